import { type SendCheck } from '@danmaku/model';
import { counter, type Logger } from '@danmaku/observability';
import { channels, guard, RedisSignals, roomKeys, type Redis, type Subscription } from '@danmaku/store';

/** Pub/sub channel: a room's live started or ended; per-process live caches drop that room. */
export const LIVE_CHANNEL = channels.live;

/** The live of a room, in the room's hash slot (`{r:ROOM}`), like the room's other keys. */
export const liveKey = roomKeys.live;

export interface LiveState {
  liveId: string;
  startedAt: number;
}

const stampDegraded = counter({ name: 'danmaku_live_stamp_degraded_total', help: 'Sends stamped from a stale live state because Redis did not answer' });

export interface LiveStatesOptions {
  /** The live store's primary (the room's live state lives beside its messages). */
  redis: Redis;
  logger?: Logger;
  /** How long this process trusts its cached live state when no LIVE_CHANNEL event came. */
  cacheMs?: number;
  /**
   * Listen to LIVE_CHANNEL on a connection of its own (duplicated from `redis`), so a live
   * started or ended on another process shows here at once rather than within cacheMs.
   */
  subscribe?: boolean;
  /** Names the subscriber connection (CLIENT LIST). */
  name?: string;
}

/**
 * Which room is live now, as every send needs to know it: read from Redis only (no MySQL), cached
 * per process for about a second and dropped on LIVE_CHANNEL events. `stamp` is the send check
 * that puts liveId and offsetMs, the replay's timeline, on messages sent during a live.
 */
export class LiveStates {
  private readonly cache = new Map<string, { state: LiveState | null; until: number }>();
  private readonly cacheMs: number;
  private readonly signals: RedisSignals;
  private subscription: Promise<Subscription | null> | null = null;

  constructor(private readonly options: LiveStatesOptions) {
    this.cacheMs = options.cacheMs ?? 1000;
    // Room signals over the store's client: sharded pub/sub on a cluster, a connection of its own.
    this.signals = new RedisSignals(options.redis, `${options.name ?? 'lives'}-live`);
    if (options.subscribe) {
      this.subscription = this.signals
        .subscribe(
          [LIVE_CHANNEL],
          (channel, roomId) => {
            if (channel === LIVE_CHANNEL) this.forget(roomId);
          },
          // Events published while we were away are lost: start from a clean cache.
          () => this.cache.clear(),
        )
        .catch((err: unknown) => {
          options.logger?.warn({ err }, 'live subscription failed');
          return null;
        });
    }
  }

  /** The room's live now, from Redis. */
  async current(roomId: string): Promise<LiveState | null> {
    const hash = await guard(() => this.options.redis.hgetall(liveKey(roomId)));
    const state = hash.liveId && hash.startedAt ? { liveId: hash.liveId, startedAt: Number(hash.startedAt) } : null;
    this.cache.set(roomId, { state, until: Date.now() + this.cacheMs });
    return state;
  }

  /** The room's live as this process last saw it, refreshed when older than cacheMs. */
  async cached(roomId: string): Promise<LiveState | null> {
    const hit = this.cache.get(roomId);
    if (hit && hit.until > Date.now()) return hit.state;
    try {
      if (this.cache.size > 50_000) this.cache.clear();
      return await this.current(roomId);
    } catch (err) {
      // Redis is away: a send still goes on the bus (it buffers), stamped from what we knew.
      if (hit) {
        stampDegraded.inc();
        return hit.state;
      }
      throw err;
    }
  }

  /** Drops a room from the per-process cache (a LIVE_CHANNEL event). */
  forget(roomId: string): void {
    this.cache.delete(roomId);
  }

  /** Tells every process (this one at once) that the room's live changed. */
  async announce(roomId: string): Promise<void> {
    this.forget(roomId);
    await this.signals
      .publish(LIVE_CHANNEL, roomId)
      .catch((err: unknown) => this.options.logger?.warn({ err }, 'live event not published; caches catch up within a second'));
  }

  /**
   * The send check that stamps a message sent during a live with liveId and offsetMs. Last in a
   * chain: only messages that passed every other check need it. Redis away and nothing cached:
   * the message goes unstamped rather than refused.
   */
  readonly stamp: SendCheck = async (message) => {
    let live: LiveState | null;
    try {
      live = await this.cached(message.roomId);
    } catch {
      stampDegraded.inc();
      return;
    }
    if (!live) return;
    return { ...message, liveId: live.liveId, offsetMs: Math.max(0, message.ts - live.startedAt) };
  };

  close(): void {
    void this.subscription?.then((s) => s?.close());
  }
}
