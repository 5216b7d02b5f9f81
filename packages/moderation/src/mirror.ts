import { counter, type Logger } from '@danmaku/observability';
import { guard, keys as storeKeys, type Redis } from '@danmaku/store';

/** Published (room id) after every mute, unmute, ban or unban, so every process reloads that room. */
export const MODERATION_CHANNEL = 'dm:moderation';

const reloads = counter<'reason'>({ name: 'danmaku_moderation_mirror_reloads_total', help: 'Rooms whose local copy of bans and mutes was reloaded, by reason', labelNames: ['reason'] });

export interface MirrorOptions {
  /** Commands (ZRANGEBYSCORE); a duplicate of it subscribes to MODERATION_CHANNEL. */
  redis: Redis;
  mutesKey: (roomId: string) => string;
  /** A room's copy is reloaded at least this often while sends arrive for it. */
  refreshMs?: number;
  /** A room without sends for this long is forgotten. */
  idleMs?: number;
  /** Most rooms kept; the least recently used goes first. */
  maxRooms?: number;
  logger?: Logger;
}

interface RoomCopy {
  /** user id -> until (ms; Infinity = for good). */
  bans: Map<string, number>;
  mutes: Map<string, number>;
  loadedAt: number;
  usedAt: number;
  loading: Promise<void> | null;
}

export type MirrorVerdict = { code: 'banned' | 'muted'; until: number } | null;

/**
 * A local copy of the bans and mutes of the rooms this process takes sends for. Redis stays the
 * authority; the copy is what the room check falls back on while Redis does not answer, so a
 * banned or muted user stays refused through a short outage instead of the check failing open.
 * Kept fresh by pub/sub (every change names its room) and by a reload every `refreshMs`.
 */
export class ModerationMirror {
  private readonly rooms = new Map<string, RoomCopy>();
  private readonly subscriber: Redis;
  private readonly timer: NodeJS.Timeout;
  private readonly refreshMs: number;
  private readonly idleMs: number;
  private readonly maxRooms: number;

  constructor(private readonly options: MirrorOptions) {
    this.refreshMs = options.refreshMs ?? 5000;
    this.idleMs = options.idleMs ?? 10 * 60_000;
    this.maxRooms = options.maxRooms ?? 10_000;
    this.subscriber = options.redis.duplicate();
    this.subscriber.on('error', () => undefined);
    // ioredis subscribes again after each reconnect; the first subscribe waits for the link.
    const subscribe = () => void this.subscriber.subscribe(MODERATION_CHANNEL).catch(() => undefined);
    if (this.subscriber.status === 'ready') subscribe();
    else this.subscriber.once('ready', subscribe);
    this.subscriber.on('message', (channel: string, roomId: string) => {
      if (channel !== MODERATION_CHANNEL) return;
      const copy = this.rooms.get(roomId);
      if (copy) void this.load(roomId, copy, 'changed');
    });
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.floor(this.refreshMs / 2)));
    this.timer.unref();
  }

  /** A send for the room is being checked: keep (or start) its copy, reloading when stale. */
  touch(roomId: string, now = Date.now()): void {
    let copy = this.rooms.get(roomId);
    if (copy) {
      // Map order is use order: the oldest entry is the least recently used. A busy room moves to
      // the back at most once a second, not on every send: the order only has to be roughly right.
      if (now - copy.usedAt >= 1000) {
        this.rooms.delete(roomId);
        this.rooms.set(roomId, copy);
        copy.usedAt = now;
      }
    } else {
      copy = { bans: new Map(), mutes: new Map(), loadedAt: 0, usedAt: now, loading: null };
      if (this.rooms.size >= this.maxRooms) {
        const oldest = this.rooms.keys().next().value;
        if (oldest !== undefined) this.rooms.delete(oldest);
      }
      this.rooms.set(roomId, copy);
    }
    if (now - copy.loadedAt >= this.refreshMs) void this.load(roomId, copy, copy.loadedAt === 0 ? 'first' : 'stale');
  }

  /** What the copy says about the user, for when Redis cannot be asked. */
  verdict(roomId: string, userId: string, now = Date.now()): MirrorVerdict {
    const copy = this.rooms.get(roomId);
    if (!copy) return null;
    const ban = copy.bans.get(userId);
    if (ban !== undefined && ban > now) return { code: 'banned', until: ban };
    const mute = copy.mutes.get(userId);
    if (mute !== undefined && mute > now) return { code: 'muted', until: mute };
    return null;
  }

  /** This process changed the room: the copy follows at once, before the reload confirms it. */
  apply(roomId: string, kind: 'ban' | 'mute', userId: string, until: number | null): void {
    const copy = this.rooms.get(roomId);
    if (!copy) return;
    const map = kind === 'ban' ? copy.bans : copy.mutes;
    if (until === null) map.delete(userId);
    else map.set(userId, until);
  }

  /** Tells every process (this one included) to reload the room. */
  async announce(roomId: string): Promise<void> {
    await guard(() => this.options.redis.publish(MODERATION_CHANNEL, roomId)).catch((err: unknown) => {
      this.options.logger?.debug({ err }, 'moderation change not announced; the periodic reload will pick it up');
    });
  }

  get size(): number {
    return this.rooms.size;
  }

  stop(): void {
    clearInterval(this.timer);
    this.subscriber.disconnect();
    this.rooms.clear();
  }

  private load(roomId: string, copy: RoomCopy, reason: string): Promise<void> {
    if (copy.loading) return copy.loading;
    const started = Date.now();
    copy.loading = (async () => {
      try {
        const redis = this.options.redis;
        const [bans, mutes] = await guard(() =>
          Promise.all([
            redis.zrangebyscore(storeKeys.bans(roomId), `(${started}`, '+inf', 'WITHSCORES'),
            redis.zrangebyscore(this.options.mutesKey(roomId), `(${started}`, '+inf', 'WITHSCORES'),
          ]),
        );
        copy.bans = pairs(bans);
        copy.mutes = pairs(mutes);
        copy.loadedAt = started;
        reloads.inc({ reason });
      } catch {
        // Keep the copy we have: that is the point of it while Redis is away.
      } finally {
        copy.loading = null;
      }
    })();
    return copy.loading;
  }

  private sweep(now = Date.now()): void {
    for (const [roomId, copy] of this.rooms) {
      if (now - copy.usedAt > this.idleMs) this.rooms.delete(roomId);
      else if (now - copy.loadedAt >= this.refreshMs) void this.load(roomId, copy, 'stale');
    }
  }
}

/** ZRANGEBYSCORE ... WITHSCORES: [member, score, ...]; Redis writes a ban for good as "inf". */
function pairs(flat: string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const score = flat[i + 1] as string;
    map.set(flat[i] as string, score === 'inf' || score === '+inf' ? Number.POSITIVE_INFINITY : Number(score));
  }
  return map;
}
