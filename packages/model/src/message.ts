import { createHash, randomBytes } from 'node:crypto';

export const MESSAGE_TYPES = ['comment', 'gift', 'like', 'enter', 'system'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

/** Types a viewer may send through the API; the rest are produced by the system. */
export const SENDABLE_TYPES = ['comment', 'gift'] as const;
export type SendableType = (typeof SENDABLE_TYPES)[number];

export const DEFAULT_POLL_TYPES: readonly MessageType[] = ['comment', 'gift', 'enter', 'system'];

export interface UserRef {
  id: string;
  name: string;
}

/** How a comment is drawn: scrolling across, or held at the top or bottom. */
export const COMMENT_MODES = ['scroll', 'top', 'bottom'] as const;
export type CommentMode = (typeof COMMENT_MODES)[number];
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

/** A message as the front puts it on the bus: the processor has not numbered it yet. */
export type UnsequencedMessage = Omit<Message, 'seq'>;

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

/** Ids sort by creation time (base36 ms prefix) so they read well in logs and MySQL. */
export function newMessageId(now = Date.now()): string {
  return now.toString(36) + randomBytes(6).toString('base64url');
}

/**
 * A retried send with the same clientMsgId must become the same message: deriving the id from
 * (room, user, clientMsgId) lets the processor's dedup-by-id collapse the retries without the
 * front keeping any state.
 */
export function clientMessageId(roomId: string, userId: string, clientMsgId: string): string {
  return 'c' + createHash('sha256').update(`${roomId}\0${userId}\0${clientMsgId}`).digest('base64url').slice(0, 22);
}

/** The bus key: every message of one (room, type) shares it, hence one partition (gear 1). */
export function streamKey(roomId: string, type: MessageType): string {
  return `${roomId}:${type}`;
}

export function parseStreamKey(key: string): { roomId: string; type: MessageType } | null {
  const at = key.lastIndexOf(':');
  if (at <= 0) return null;
  const roomId = key.slice(0, at);
  const type = key.slice(at + 1);
  return isMessageType(type) ? { roomId, type } : null;
}

/** FNV-1a: a stable, cheap hash so the memory bus and Kafka pick the same partition. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * The partition of a stream. `spread` > 1 lets a hot stream use several consecutive partitions
 * (gears 2 and 4); `salt` picks one of them.
 */
export function partitionFor(key: string, partitions: number, spread = 1, salt = 0): number {
  const base = hash32(key) % partitions;
  if (spread <= 1) return base;
  return (base + (salt % Math.min(spread, partitions))) % partitions;
}
