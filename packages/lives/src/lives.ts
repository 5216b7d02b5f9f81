import { ApiError, newMessageId, type Sender } from '@danmaku/model';
import type { Logger } from '@danmaku/observability';
import { defineScripts, guard, registerScripts, type Redis } from '@danmaku/store';
import { LiveStates, liveKey, type LiveState } from './states.js';

/** A live as recorded for replay (MySQL): replay reads startedAt/endedAt there. */
export interface LiveRecord {
  liveId: string;
  roomId: string;
  startedAt: number;
  endedAt: number | null;
  /** The live's video for viewers (HLS, MP4 or WebM); absent or null: none. */
  playbackUrl?: string | null;
  /** The recording of an ended live, for replay; absent or null: none. */
  recordingUrl?: string | null;
}

/** Where lives are recorded for good (the MySQL archive implements it). */
export interface LiveRecords {
  recordLiveStart(live: LiveRecord, startedBy: string): Promise<void>;
  /** The record after the end; null when unknown. */
  recordLiveEnd(liveId: string, endedAt: number): Promise<LiveRecord | null>;
  live(liveId: string): Promise<LiveRecord | null>;
}

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

export interface LivesOptions {
  /** The live store's primary. */
  redis: Redis;
  records: LiveRecords;
  logger?: Logger;
  /**
   * The process's live states, so a start or end here drops the same cache sends are stamped
   * from; a private one when absent.
   */
  states?: LiveStates;
}

const LIVE_SCRIPTS = registerScripts({ dmLiveStart: { keys: 1, lua: START_LUA }, dmLiveEnd: { keys: 1, lua: END_LUA } });

/**
 * Starting and ending lives: the current one in Redis (what sends are stamped from), every one
 * recorded in MySQL (what replay reads).
 */
export class Lives {
  private readonly redis: LiveRedis;
  readonly states: LiveStates;

  constructor(private readonly options: LivesOptions) {
    this.redis = defineScripts<LiveRedis>(options.redis, LIVE_SCRIPTS);
    this.states = options.states ?? new LiveStates({ redis: options.redis, logger: options.logger });
  }

  async start(roomId: string, by: Sender, now = Date.now()): Promise<LiveState> {
    const liveId = 'lv' + newMessageId(now);
    const [created, currentId, currentStart] = await guard(() => this.redis.dmLiveStart(liveKey(roomId), liveId, now));
    if (created !== 1) {
      throw new ApiError(409, 'live_already_on', `Room ${roomId} is live already (live ${currentId}, started ${new Date(Number(currentStart)).toISOString()}); end it first.`);
    }
    try {
      await this.options.records.recordLiveStart({ liveId, roomId, startedAt: now, endedAt: null }, by.id);
    } catch (err) {
      // Without its MySQL record the live could never be replayed: give the room back.
      await guard(() => this.redis.dmLiveEnd(liveKey(roomId), liveId)).catch(() => undefined);
      throw err;
    }
    await this.states.announce(roomId);
    return { liveId, startedAt: now };
  }

  async end(roomId: string, liveId: string, now = Date.now()): Promise<{ liveId: string; endedAt: number }> {
    const { records } = this.options;
    const ended = await guard(() => this.redis.dmLiveEnd(liveKey(roomId), liveId));
    if (ended === 1) {
      await this.states.announce(roomId);
      const record = await records.recordLiveEnd(liveId, now);
      return { liveId, endedAt: record?.endedAt ?? now };
    }
    const record = await records.live(liveId);
    if (!record || record.roomId !== roomId) throw new ApiError(404, 'live_not_found', `Room ${roomId} has no live ${liveId}.`);
    if (record.endedAt !== null) throw new ApiError(409, 'live_already_ended', `Live ${liveId} ended at ${new Date(record.endedAt).toISOString()}.`);
    // Redis no longer has it but MySQL was not told (an earlier end failed half-way): finish it.
    const finished = await records.recordLiveEnd(liveId, now);
    return { liveId, endedAt: finished?.endedAt ?? now };
  }

  /** The room's live now, from Redis. */
  current(roomId: string): Promise<LiveState | null> {
    return this.states.current(roomId);
  }

  /** The room's live as this process last saw it (about a second old at most). */
  cached(roomId: string): Promise<LiveState | null> {
    return this.states.cached(roomId);
  }

  /** The recorded live: null when unknown. */
  record(liveId: string): Promise<LiveRecord | null> {
    return this.options.records.live(liveId);
  }
}
