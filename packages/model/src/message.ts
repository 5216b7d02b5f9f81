import { createHash, randomBytes } from 'node:crypto';
import { isMessageType, type Message, type MessageType } from '@danmaku/protocol';

/** A message as the front puts it on the bus: the processor has not numbered it yet. */
export type UnsequencedMessage = Omit<Message, 'seq'>;

// Random bytes drawn in blocks: one call to the CSPRNG per 512 ids instead of one per id.
const ID_RANDOM_BYTES = 6;
const POOL_BYTES = ID_RANDOM_BYTES * 512;
let pool = Buffer.alloc(0);
let poolOffset = 0;

/** Ids sort by creation time (base36 ms prefix) so they read well in logs and MySQL. */
export function newMessageId(now = Date.now()): string {
  if (poolOffset + ID_RANDOM_BYTES > pool.length) {
    pool = randomBytes(POOL_BYTES);
    poolOffset = 0;
  }
  const random = pool.toString('base64url', poolOffset, poolOffset + ID_RANDOM_BYTES);
  poolOffset += ID_RANDOM_BYTES;
  return now.toString(36) + random;
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
