import type { Principal } from '@danmaku/auth';
import type { SendCheck } from '@danmaku/ingest';
import { ApiError, newMessageId } from '@danmaku/model';
import { counter, type Logger } from '@danmaku/observability';
import { channels, defineScripts, guard, roomKeys, type Redis } from '@danmaku/store';
import type { Archive, LiveRecord } from './archive.js';

/** Pub/sub channel: a room's live started or ended; per-process live caches drop that room. */
export const LIVE_CHANNEL = channels.live;

/** The live of a room, in the room's hash slot (`{r:ROOM}`), like the room's other keys. */
export const liveKey = roomKeys.live;

export interface LiveState {
  liveId: string;
  startedAt: number;
}

const stampDegraded = counter({ name: 'danmaku_live_stamp_degraded_total', help: 'Sends stamped from a stale live state because Redis did not answer' });

// Claim the room for a new live unless one is on: one atomic step, so two starts cannot both win.
const START_LUA = `
local cur = redis.call('HGET', KEYS[1], 'liveId')
if cur then return {0, cur, redis.call('HGET', KEYS[1], 'startedAt')} end
redis.call('HSET', KEYS[1], 'liveId', ARGV[1], 'startedAt', ARGV[2])
return {1, ARGV[1], ARGV[2]}
`;
// End only the live named (a stale end must not end a newer live).
const END_LUA = `
if redis.call('HGET', KEYS[1], 'liveId') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
`;

interface LiveRedis extends Redis {
  dmLiveStart(key: string, liveId: string, startedAt: number): Promise<[number, string, string]>;
  dmLiveEnd(key: string, liveId: string): Promise<number>;
}

function scripted(redis: Redis): LiveRedis {
  return defineScripts<LiveRedis>(redis, { dmLiveStart: { keys: 1, lua: START_LUA }, dmLiveEnd: { keys: 1, lua: END_LUA } });
}

export interface LivesOptions {
  /** The live store's primary (the room's live state lives beside its messages). */
  redis: Redis;
  archive: Archive;
  logger?: Logger;
  /** How long a front trusts its cached live state when no LIVE_CHANNEL event came. */
  cacheMs?: number;
  /** Publishes a room signal (sharded on a cluster); default: PUBLISH on `redis`. */
  publish?: (channel: string, text: string) => Promise<unknown>;
}

/**
 * Lives of rooms: the current one in Redis (read on every send, so cached per process and
 * invalidated over pub/sub), every one recorded in MySQL (replay reads startedAt/endedAt there).
 */
export class Lives {
  private readonly redis: LiveRedis;
  private readonly cache = new Map<string, { state: LiveState | null; until: number }>();
  private readonly cacheMs: number;

  constructor(private readonly options: LivesOptions) {
    this.redis = scripted(options.redis);
    this.cacheMs = options.cacheMs ?? 1000;
  }

  async start(roomId: string, principal: Principal, now = Date.now()): Promise<LiveState> {
    const liveId = 'lv' + newMessageId(now);
    const [created, currentId, currentStart] = await guard(() => this.redis.dmLiveStart(liveKey(roomId), liveId, now));
    if (created !== 1) {
      throw new ApiError(409, 'live_already_on', `Room ${roomId} is live already (live ${currentId}, started ${new Date(Number(currentStart)).toISOString()}); end it first.`);
    }
    try {
      await this.options.archive.recordLiveStart({ liveId, roomId, startedAt: now, endedAt: null }, principal.id);
    } catch (err) {
      // Without its MySQL record the live could never be replayed: give the room back.
      await guard(() => this.redis.dmLiveEnd(liveKey(roomId), liveId)).catch(() => undefined);
      throw err;
    }
    await this.announce(roomId);
    return { liveId, startedAt: now };
  }

  async end(roomId: string, liveId: string, now = Date.now()): Promise<{ liveId: string; endedAt: number }> {
    const ended = await guard(() => this.redis.dmLiveEnd(liveKey(roomId), liveId));
    if (ended === 1) {
      await this.announce(roomId);
      const record = await this.options.archive.recordLiveEnd(liveId, now);
      return { liveId, endedAt: record?.endedAt ?? now };
    }
    const record = await this.options.archive.live(liveId);
    if (!record || record.roomId !== roomId) throw new ApiError(404, 'live_not_found', `Room ${roomId} has no live ${liveId}.`);
    if (record.endedAt !== null) throw new ApiError(409, 'live_already_ended', `Live ${liveId} ended at ${new Date(record.endedAt).toISOString()}.`);
    // Redis no longer has it but MySQL was not told (an earlier end failed half-way): finish it.
    const finished = await this.options.archive.recordLiveEnd(liveId, now);
    return { liveId, endedAt: finished?.endedAt ?? now };
  }

  /** The room's live now, from Redis. */
  async current(roomId: string): Promise<LiveState | null> {
    const hash = await guard(() => this.redis.hgetall(liveKey(roomId)));
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

  /** The MySQL record of a live: null when unknown. */
  record(liveId: string): Promise<LiveRecord | null> {
    return this.options.archive.live(liveId);
  }

  /**
   * The ingest check that stamps a message sent during a live with liveId and offsetMs, the
   * replay's timeline. Last in the chain: only messages that passed every other check need it.
   */
  readonly stampCheck: SendCheck = async (message) => {
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

  private async announce(roomId: string): Promise<void> {
    this.cache.delete(roomId);
    await (this.options.publish ? this.options.publish(LIVE_CHANNEL, roomId) : this.redis.publish(LIVE_CHANNEL, roomId)).catch((err: unknown) => this.options.logger?.warn({ err }, 'live event not published; caches catch up within a second'));
  }
}
