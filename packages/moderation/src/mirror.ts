import { counter, type Logger } from '@danmaku/observability';
import { guard, keys as storeKeys, type Redis } from '@danmaku/store';

/** Published (room id) after every mute, unmute, ban or unban, so every process reloads that room. */
export const MODERATION_CHANNEL = 'dm:moderation';

const reloads = counter<'reason'>({ name: 'danmaku_moderation_mirror_reloads_total', help: 'Rooms whose local copy of bans and mutes was reloaded, by reason', labelNames: ['reason'] });

export interface MirrorOptions {
  /** Commands (ZRANGEBYSCORE); a duplicate of it subscribes to MODERATION_CHANNEL. */
  redis: Redis;
  mutesKey: (roomId: string) => string;
  /** The room's settings hash (its `slowSec` field is the slow mode). */
  settingsKey: (roomId: string) => string;
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
  /** Slow mode (s); 0 = off. */
  slowSec: number;
  loadedAt: number;
  usedAt: number;
  loading: Promise<void> | null;
  /** Changed while a load was in flight, which may have read Redis before the change: load again. */
  stale: boolean;
}

export type MirrorVerdict = { code: 'banned' | 'muted'; until: number } | null;

/**
 * A local copy of the bans, mutes and slow mode of the rooms this process takes sends for: what
 * the room check reads, so a send costs no Redis round trip for them. Redis stays the authority
 * (every change is written there first); the copy follows through pub/sub (every change names its
 * room, and the changing process applies it at once), and a reload every `refreshMs` while sends
 * arrive covers a missed message. While Redis does not answer the copy is kept, so a banned or
 * muted user stays refused through an outage.
 */
export class ModerationMirror {
  private readonly rooms = new Map<string, RoomCopy>();
  private readonly subscriber: Redis;
  private readonly timer: NodeJS.Timeout;
  private readonly refreshMs: number;
  private readonly idleMs: number;
  private readonly maxRooms: number;
  private subscribed = false;
  private subscribedOnce = false;

  constructor(private readonly options: MirrorOptions) {
    this.refreshMs = options.refreshMs ?? 5000;
    this.idleMs = options.idleMs ?? 10 * 60_000;
    this.maxRooms = options.maxRooms ?? 10_000;
    this.subscriber = options.redis.duplicate();
    this.subscriber.on('error', () => undefined);
    // Subscribed on every (re)connect. A change announced while the link was down was missed, so
    // every copy is reloaded once the subscription is back.
    const subscribe = () =>
      void this.subscriber.subscribe(MODERATION_CHANNEL).then(
        () => {
          if (this.subscribedOnce) for (const [roomId, copy] of this.rooms) void this.load(roomId, copy, 'resubscribed');
          this.subscribedOnce = true;
          this.subscribed = true;
        },
        () => undefined,
      );
    if (this.subscriber.status === 'ready') subscribe();
    this.subscriber.on('ready', subscribe);
    this.subscriber.on('close', () => (this.subscribed = false));
    this.subscriber.on('message', (channel: string, roomId: string) => {
      if (channel !== MODERATION_CHANNEL) return;
      const copy = this.rooms.get(roomId);
      if (copy) void this.load(roomId, copy, 'changed');
    });
    this.timer = setInterval(() => this.sweep(), Math.max(250, Math.floor(this.refreshMs / 2)));
    this.timer.unref();
  }

  /**
   * touch, then waits for the room's first load (a room this process has not checked before), so a
   * check reads a copy that came from Redis. Resolves false when that load failed (Redis away).
   */
  async ready(roomId: string, now = Date.now()): Promise<boolean> {
    const copy = this.touch(roomId, now);
    if (copy.loadedAt === 0 && copy.loading) await copy.loading;
    return copy.loadedAt > 0;
  }

  /** The room's slow mode (s) as the copy has it; 0 = off or not known. */
  slowSec(roomId: string): number {
    return this.rooms.get(roomId)?.slowSec ?? 0;
  }

  /** A send for the room is being checked: keep (or start) its copy, reloading when stale. */
  touch(roomId: string, now = Date.now()): RoomCopy {
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
      copy = { bans: new Map(), mutes: new Map(), slowSec: 0, loadedAt: 0, usedAt: now, loading: null, stale: false };
      if (this.rooms.size >= this.maxRooms) {
        const oldest = this.rooms.keys().next().value;
        if (oldest !== undefined) this.rooms.delete(oldest);
      }
      this.rooms.set(roomId, copy);
    }
    if (now - copy.loadedAt >= this.refreshMs) void this.load(roomId, copy, copy.loadedAt === 0 ? 'first' : 'stale');
    return copy;
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
    this.edit(roomId, (copy) => {
      const map = kind === 'ban' ? copy.bans : copy.mutes;
      if (until === null) map.delete(userId);
      else map.set(userId, until);
    });
  }

  /** This process changed the room's slow mode (0 = off). */
  applySlowMode(roomId: string, sec: number): void {
    this.edit(roomId, (copy) => (copy.slowSec = sec));
  }

  /** A change this process made, applied to the room's copy (if it has one) before Redis confirms it. */
  private edit(roomId: string, change: (copy: RoomCopy) => void): void {
    const copy = this.rooms.get(roomId);
    if (!copy) return;
    change(copy);
    // A load in flight may have read Redis before the change and would overwrite it.
    if (copy.loading) copy.stale = true;
  }

  /** Tells every process (this one included) to reload the room. */
  async announce(roomId: string): Promise<void> {
    await guard(() => this.options.redis.publish(MODERATION_CHANNEL, roomId)).catch((err: unknown) => {
      this.options.logger?.debug({ err }, 'moderation change not announced; the periodic reload will pick it up');
    });
  }

  /** Whether changes are being heard now (the pub/sub subscription is up). */
  get listening(): boolean {
    return this.subscribed;
  }

  get size(): number {
    return this.rooms.size;
  }

  stop(): void {
    clearInterval(this.timer);
    this.subscriber.disconnect();
    this.rooms.clear();
  }

  /**
   * Reads the room from Redis into its copy. A load asked for because something changed ('changed',
   * 'resubscribed') while another is in flight marks the copy stale instead of joining it: that
   * load may have read Redis before the change, so the room is loaded again after it.
   */
  private load(roomId: string, copy: RoomCopy, reason: 'first' | 'stale' | 'changed' | 'resubscribed'): Promise<void> {
    if (copy.loading) {
      if (reason === 'changed' || reason === 'resubscribed') copy.stale = true;
      return copy.loading;
    }
    const started = Date.now();
    copy.loading = (async () => {
      try {
        const redis = this.options.redis;
        const [bans, mutes, slowSec] = await guard(() =>
          Promise.all([
            redis.zrangebyscore(storeKeys.bans(roomId), `(${started}`, '+inf', 'WITHSCORES'),
            redis.zrangebyscore(this.options.mutesKey(roomId), `(${started}`, '+inf', 'WITHSCORES'),
            redis.hget(this.options.settingsKey(roomId), 'slowSec'),
          ]),
        );
        copy.bans = pairs(bans);
        copy.mutes = pairs(mutes);
        copy.slowSec = Number(slowSec ?? 0) || 0;
        copy.loadedAt = started;
        reloads.inc({ reason });
      } catch {
        // Keep the copy we have: that is the point of it while Redis is away.
      } finally {
        copy.loading = null;
      }
      if (copy.stale && this.rooms.get(roomId) === copy) {
        copy.stale = false;
        await this.load(roomId, copy, 'changed');
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
