import type { Redis } from 'ioredis';
import { unavailable } from '@danmaku/model';
import { isMessageType, type MessageType, type UserRef } from '@danmaku/protocol';
import { execSpread, isCluster, nodeOfKey, type Cluster, type Command } from './cluster.js';
import { channels, roomKeys, streamKeys } from './keys.js';
import { defineScripts, guard, registerScripts } from './redis.js';
import { APPEND_LUA, DELETE_LUA, PRESENCE_LUA, READ_LUA } from './scripts.js';
import { RedisSignals, type Signals } from './signals.js';

/** Keys of one (room, type) share the hash tag `{r:ROOM:TYPE}`: one slot per stream (see keys.ts). */
export const keys = {
  ...streamKeys,
  users: roomKeys.users,
  names: roomKeys.names,
  bans: roomKeys.bans,
};

type ScriptReply = (string | number)[];

interface ScriptedRedis extends Redis {
  dmAppend(z: string, seq: string, ids: string, floor: string, ...args: (string | number)[]): Promise<ScriptReply>;
  dmRead(z: string, seq: string, floor: string, cursor: number, limit: number, notBefore: number): Promise<ScriptReply>;
  dmDelete(z: string, ids: string, id: string): Promise<number>;
  dmPresence(users: string, names: string, now: number, ttl: number, op: string, id: string, name: string): Promise<number>;
}

const STORE_SCRIPTS = registerScripts({
  dmAppend: { keys: 4, lua: APPEND_LUA },
  dmRead: { keys: 3, lua: READ_LUA },
  dmDelete: { keys: 2, lua: DELETE_LUA },
  dmPresence: { keys: 2, lua: PRESENCE_LUA },
});

function withScripts(redis: Redis): ScriptedRedis {
  return defineScripts<ScriptedRedis>(redis, STORE_SCRIPTS);
}

/** Pub/sub channel: messages were deleted; caches drop them, connectors emit `deleted`. */
export const DELETED_CHANNEL = channels.deleted;

export interface MessagesDeleted {
  roomId: string;
  type: MessageType;
  ids: string[];
}

/**
 * A DELETED_CHANNEL message as deleteMessage publishes it, or null for anything else (bytes of
 * another publisher, an unknown type, ids that are not strings): every subscriber drops those
 * rather than act on a guess.
 */
export function parseMessagesDeleted(text: string): MessagesDeleted | null {
  let event: unknown;
  try {
    event = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof event !== 'object' || event === null) return null;
  const { roomId, type, ids } = event as Record<string, unknown>;
  if (typeof roomId !== 'string' || typeof type !== 'string' || !isMessageType(type)) return null;
  if (!Array.isArray(ids) || !ids.every((id): id is string => typeof id === 'string')) return null;
  return { roomId, type, ids };
}

/** Pub/sub channel: a user is out of a room (ban or kick); every connector removes their sessions. */
export const KICKED_CHANNEL = channels.kicked;

export interface RoomKick {
  roomId: string;
  userId: string;
  code: 'banned' | 'kicked';
  /** A sentence for the user, as in an error body. */
  message: string;
}

export interface AppendEntry {
  id: string;
  /** The message JSON without seq, as the front serialised it. */
  json: string;
}

export interface AppendResult {
  newestSeq: number;
  /** Per entry: its new seq, or null when it was a duplicate of an earlier message. */
  seqs: (number | null)[];
}

export interface ReadResult {
  newestSeq: number;
  skipped: boolean;
  /** Stored JSON of each message, seq order, ready to splice into a response. */
  messages: string[];
  /** The seq of the last message returned, or the cursor/newest when none were. */
  cursorSeq: number;
}

export interface StoreOptions {
  /** The primary: every write. */
  write: Redis;
  /** A replica when configured (REDIS_READ_URL), else the primary. */
  read?: Redis;
  retention: number;
  dedupWindow: number;
  onlineTtlMs: number;
  /** Seconds a (room, type) stream's keys live after its last append (default one day). */
  roomTtlS?: number;
  /**
   * After every append, WAIT for this many replicas (at most waitTimeoutMs) and fail the append
   * when fewer acknowledged: the processor then does not commit, and the bus redelivers.
   */
  waitReplicas?: number;
  waitTimeoutMs?: number;
  /** Pub/sub; default: Redis pub/sub over `write` (sharded on a cluster). */
  signals?: Signals;
}

/**
 * The message log of the roles (Centrifuge's Broker history, in our shape): what a reader that
 * only reads and appends messages takes, so it works on any log, not only Redis.
 */
export interface MessageLog {
  /** Messages a stream keeps by default. */
  readonly retention: number;
  /** `retention`: messages the stream keeps (default: the store's); a hot stream may keep more. */
  append(roomId: string, type: MessageType, entries: readonly AppendEntry[], retention?: number): Promise<AppendResult>;
  readSince(roomId: string, type: MessageType, cursorSeq: number | null, limit: number, notBefore?: number): Promise<ReadResult>;
  readMany(roomId: string, wants: readonly { type: MessageType; cursorSeq: number | null }[], limit: number, notBefore?: number): Promise<Map<MessageType, ReadResult>>;
  newestSeq(roomId: string, type: MessageType): Promise<number>;
  newestSeqs(roomId: string, types: readonly MessageType[]): Promise<number[]>;
  deleteMessage(roomId: string, type: MessageType, id: string): Promise<boolean>;
}

/** The live store: per-(room, type) sorted sets and room presence. */
export class RedisStore implements MessageLog {
  /**
   * The primary (or, on a Redis Cluster, the cluster client typed as one: see asRedis). Roles
   * should prefer the methods and `signals`; the raw client stays for the packages of the store's
   * own family (moderation, switches, archive) until they have interfaces of their own.
   */
  readonly write: ScriptedRedis;
  readonly read: ScriptedRedis;
  readonly signals: Signals;
  readonly clustered: boolean;
  readonly retention: number;
  private readonly dedupWindow: number;
  private readonly onlineTtlMs: number;
  private readonly roomTtlS: number;
  private readonly waitReplicas: number;
  private readonly waitTimeoutMs: number;

  constructor(options: StoreOptions) {
    this.write = withScripts(options.write);
    this.read = withScripts(options.read ?? options.write);
    this.clustered = isCluster(options.write);
    this.signals = options.signals ?? new RedisSignals(options.write);
    this.retention = options.retention;
    this.dedupWindow = options.dedupWindow;
    this.onlineTtlMs = options.onlineTtlMs;
    this.roomTtlS = options.roomTtlS ?? 86_400;
    this.waitReplicas = options.waitReplicas ?? 0;
    this.waitTimeoutMs = options.waitTimeoutMs ?? 100;
  }

  /** Numbers and stores a batch of one (room, type) in one atomic script call. */
  async append(roomId: string, type: MessageType, entries: readonly AppendEntry[], retention = this.retention): Promise<AppendResult> {
    const args: string[] = [];
    for (const e of entries) args.push(e.id, e.json);
    const z = keys.messages(roomId, type);
    const reply = await guard(() => this.write.dmAppend(z, keys.seq(roomId, type), keys.ids(roomId, type), keys.floor(roomId, type), retention, this.dedupWindow, this.roomTtlS, ...args));
    if (this.waitReplicas > 0) await this.waitForReplicas(z);
    const seqs = reply.slice(1).map((s) => (Number(s) > 0 ? Number(s) : null));
    return { newestSeq: Number(reply[0]), seqs };
  }

  /**
   * WAIT on the connection that wrote `key` (on a cluster: the primary of its slot). Redis
   * replication is asynchronous; this is what makes an acknowledged append survive its primary.
   */
  private async waitForReplicas(key: string): Promise<void> {
    const client = this.clustered ? nodeOfKey(this.write as unknown as Cluster, key) : this.write;
    if (!client) throw unavailable('redis');
    const acked = await guard(() => client.wait(this.waitReplicas, this.waitTimeoutMs));
    if (Number(acked) < this.waitReplicas) throw unavailable('redis');
  }

  /**
   * Messages after `cursorSeq` (null: the newest window), at most `limit`. With `notBefore` (ms),
   * a cursor that points at messages stamped before it gets only newer ones, and `skipped`.
   */
  async readSince(roomId: string, type: MessageType, cursorSeq: number | null, limit: number, notBefore = 0): Promise<ReadResult> {
    const reply = await guard(() => this.read.dmRead(keys.messages(roomId, type), keys.seq(roomId, type), keys.floor(roomId, type), cursorSeq ?? -1, limit, notBefore));
    return toReadResult(reply, cursorSeq);
  }

  /** Several streams of a room in one round trip (`notBefore` as in readSince). */
  async readMany(
    roomId: string,
    wants: readonly { type: MessageType; cursorSeq: number | null }[],
    limit: number,
    notBefore = 0,
  ): Promise<Map<MessageType, ReadResult>> {
    // Each (room, type) is its own slot: one pipeline on a single Redis, per node on a cluster.
    const replies = await guard(async () => {
      const commands: Command[] = wants.map((w) => ['dmRead', keys.messages(roomId, w.type), keys.seq(roomId, w.type), keys.floor(roomId, w.type), w.cursorSeq ?? -1, limit, notBefore]);
      const results = await execSpread(this.read, commands);
      return results.map(([err, value]) => {
        if (err) throw err;
        return value as ScriptReply;
      });
    });
    const out = new Map<MessageType, ReadResult>();
    wants.forEach((w, i) => out.set(w.type, toReadResult(replies[i] ?? [0, 0], w.cursorSeq)));
    return out;
  }

  /**
   * Removes a message from the live window (moderation) and tells every front and connector on
   * DELETED_CHANNEL. Returns false when the id is not in the window (already trimmed or unknown).
   */
  async deleteMessage(roomId: string, type: MessageType, id: string): Promise<boolean> {
    const seq = await guard(() => this.write.dmDelete(keys.messages(roomId, type), keys.ids(roomId, type), id));
    if (seq === 0) return false;
    const event: MessagesDeleted = { roomId, type, ids: [id] };
    await this.signals.publish(DELETED_CHANNEL, JSON.stringify(event));
    return true;
  }

  /** Tells every connector to take the user's sessions out of the room (fire and forget, like every signal). */
  async kick(kick: RoomKick): Promise<void> {
    await this.signals.publish(KICKED_CHANNEL, JSON.stringify(kick));
  }

  async newestSeq(roomId: string, type: MessageType): Promise<number> {
    const value = await guard(() => this.read.get(keys.seq(roomId, type)));
    return value === null ? 0 : Number(value);
  }

  /** The newest seq of several streams of a room (their keys sit in different slots: no MGET). */
  async newestSeqs(roomId: string, types: readonly MessageType[]): Promise<number[]> {
    const replies = await guard(() => execSpread(this.read, types.map((t): Command => ['get', keys.seq(roomId, t)])));
    return replies.map(([err, value]) => {
      if (err) throw err;
      return value === null ? 0 : Number(value);
    });
  }

  /** Who is in a room (Centrifuge's PresenceManager): enter, leave, online and users. */
  async enter(roomId: string, user: UserRef, now = Date.now()): Promise<number> {
    return guard(() => this.write.dmPresence(keys.users(roomId), keys.names(roomId), now, this.onlineTtlMs, 'enter', user.id, user.name));
  }

  async leave(roomId: string, userId: string, now = Date.now()): Promise<number> {
    return guard(() => this.write.dmPresence(keys.users(roomId), keys.names(roomId), now, this.onlineTtlMs, 'leave', userId, ''));
  }

  /** Online viewers: seen within the TTL. Read-only, so it may run on a replica. */
  async online(roomId: string, now = Date.now()): Promise<number> {
    return guard(() => this.read.zcount(keys.users(roomId), now - this.onlineTtlMs, '+inf'));
  }

  /** The most recently seen viewers first. */
  async users(roomId: string, limit: number, now = Date.now()): Promise<{ online: number; users: UserRef[] }> {
    const [online, ids] = await guard(async () => {
      const [countReply, idsReply] = (await this.read
        .pipeline()
        .zcount(keys.users(roomId), now - this.onlineTtlMs, '+inf')
        .zrevrangebyscore(keys.users(roomId), '+inf', now - this.onlineTtlMs, 'LIMIT', 0, limit)
        .exec()) ?? [];
      if (countReply?.[0]) throw countReply[0];
      if (idsReply?.[0]) throw idsReply[0];
      return [Number(countReply?.[1] ?? 0), (idsReply?.[1] ?? []) as string[]] as const;
    });
    if (ids.length === 0) return { online, users: [] };
    const names = await guard(() => this.read.hmget(keys.names(roomId), ...ids));
    return { online, users: ids.map((id, i) => ({ id, name: names[i] ?? id })) };
  }

  /** Bans a user from a room until `untilMs` (Infinity: for good). */
  async ban(roomId: string, userId: string, untilMs: number): Promise<void> {
    await guard(() => this.write.zadd(keys.bans(roomId), Number.isFinite(untilMs) ? untilMs : '+inf', userId));
  }

  async unban(roomId: string, userId: string): Promise<void> {
    await guard(() => this.write.zrem(keys.bans(roomId), userId));
  }

  /** The room-entry check of the business module (connector join, HTTP enter, send). */
  async isBanned(roomId: string, userId: string, now = Date.now()): Promise<boolean> {
    const until = await guard(() => this.read.zscore(keys.bans(roomId), userId));
    // Redis answers "inf" for a ban for good.
    return until !== null && (until === 'inf' || Number(until) > now);
  }

  /** Redis answers: for /readyz. */
  async ping(): Promise<boolean> {
    try {
      await guard(() => this.write.ping());
      if (this.read !== this.write) await guard(() => this.read.ping());
      return true;
    } catch {
      return false;
    }
  }
}

function toReadResult(reply: ScriptReply, cursorSeq: number | null): ReadResult {
  const newestSeq = Number(reply[0] ?? 0);
  const skipped = Number(reply[1] ?? 0) === 1;
  const messages = reply.slice(2).map(String);
  let last = skipped || cursorSeq === null ? newestSeq : cursorSeq;
  if (messages.length > 0) last = seqOf(messages[messages.length - 1] as string);
  return { newestSeq, skipped, messages, cursorSeq: last };
}

/** The ts of a stored message, read as the store's scripts read it (no JSON parse). */
export function tsOf(storedJson: string): number {
  return Number(/"ts":(\d+)/.exec(storedJson)?.[1] ?? 0);
}

/** The seq of a stored message: the store writes it first, so no JSON parse is needed. */
export function seqOf(storedJson: string): number {
  return Number(storedJson.slice(7, storedJson.indexOf(',', 7)));
}
