/**
 * Messages as they travel: over HTTP, over socket.io, and into the browser. Nothing here may
 * import a Node built-in, because the SDK bundles this file for browsers.
 */

export const MESSAGE_TYPES = ['comment', 'gift', 'like', 'enter', 'system'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** Types a viewer may send through the API; the rest are produced by the system. */
export const SENDABLE_TYPES = ['comment', 'gift'] as const;
export type SendableType = (typeof SENDABLE_TYPES)[number];

/** What a poll, a join and the SDK read when the client names no types. */
export const DEFAULT_POLL_TYPES: readonly MessageType[] = ['comment', 'gift', 'enter', 'system'];

export interface UserRef {
  id: string;
  name: string;
}

/** How a comment is drawn: scrolling across, or held at the top or bottom. */
export const COMMENT_MODES = ['scroll', 'top', 'bottom'] as const;
export type CommentMode = (typeof COMMENT_MODES)[number];
/** A comment's colour: `#RRGGBB`. */
export const COLOR_PATTERN = '^#[0-9a-fA-F]{6}$';

export interface Gift {
  giftId: string;
  count: number;
}

/** A message as clients see it (API.md). */
export interface Message {
  id: string;
  roomId: string;
  type: MessageType;
  seq: number;
  ts: number;
  user: UserRef;
  content?: string;
  gift?: Gift;
  /** Comments only, when the sender chose them: `#RRGGBB`, and the drawing mode. */
  color?: string;
  mode?: CommentMode;
  liveId?: string;
  offsetMs?: number;
}

export function isMessageType(value: string): value is MessageType {
  return (MESSAGE_TYPES as readonly string[]).includes(value);
}

/**
 * Room ids go into Redis keys inside a hash tag (`{r:ROOM:TYPE}`), so they must not contain
 * the separators; this pattern is also the HTTP param schema.
 */
export const ROOM_ID_PATTERN = '^[A-Za-z0-9_-]{1,64}$';
const roomIdRe = new RegExp(ROOM_ID_PATTERN);
export function isRoomId(value: string): boolean {
  return roomIdRe.test(value);
}
