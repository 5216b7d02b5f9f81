import type { UnsequencedMessage } from './message.js';

/**
 * Who sends, as a send check sees it. A verified token's principal (@danmaku/auth) is one; the
 * shape lives here so the packages that provide checks (moderation, switches, lives) and the send
 * pipeline that runs them share it without depending on each other.
 */
export interface Sender {
  id: string;
  name: string;
  role: string;
  /** Rooms a streamer owns. */
  rooms: readonly string[];
}

/** Where a send came from, beyond the token: what per-client checks (rate limit by IP) need. */
export interface SendContext {
  /** The client address (HTTP: request.ip; socket.io: handshake.address). */
  ip?: string;
}

/**
 * A check a send passes before it is accepted (moderation, rate limits, read-only rooms, the live
 * stamp). Throws an ApiError to refuse; may return a changed message (e.g. a word filter replacing text).
 */
export type SendCheck = (
  message: UnsequencedMessage,
  sender: Sender,
  context?: SendContext,
) => Promise<UnsequencedMessage | void> | UnsequencedMessage | void;
