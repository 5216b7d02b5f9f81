import { LRUCache } from 'lru-cache';
import { ApiError } from '@danmaku/model';
import type { MessageType } from '@danmaku/protocol';
import { counter, type Logger } from '@danmaku/observability';
import { channels, replayKeys, type Redis } from '@danmaku/store';
import type { Archive, LiveRecord, ReplayRow } from './archive.js';

/** Pub/sub channel: a live's replay caches are stale (a message was deleted); fronts drop them. */
export const REPLAY_CHANNEL = channels.replay;

/** Replay Redis keys share the live's hash tag, so a live's segments sit on one slot. */
export { replayKeys };

const unfinished = counter({ name: 'danmaku_replay_unfinished_segments_total', help: 'Segment loads not cached because the archivers had not passed their end (archived-up-to watermark)' });
const watermarkUnknown = counter({ name: 'danmaku_replay_watermark_errors_total', help: 'Segment loads not cached because the archived-up-to watermark could not be read' });
const segmentReads = counter<'tier'>({
  name: 'danmaku_replay_segment_reads_total',
  help: 'Replay segments served, by the tier that had them (local, inflight = joined a load in progress, redis, mysql)',
  labelNames: ['tier'],
});
const replayRedisErrors = counter({ name: 'danmaku_replay_redis_errors_total', help: 'Replay Redis calls that failed (replay fell through to MySQL)' });

/** One cached message: offset, type and its JSON ready to splice into a response. */
interface Item {
  o: number;
  t: MessageType;
  j: string;
}

interface Segment {
  items: Item[];
  bytes: number;
}

/** A live and how far its messages reach (imported ones may lie past its end). */
type LiveEntry = { live: LiveRecord | null; lastOffsetMs: number | null };

/** Messages of a live counted in equal spans of its time (the density curve over a seek bar). */
export interface Density {
  liveId: string;
  /** The live's length, or as far as its messages reach if further (imported ones); a running live: so far. */
  durationMs: number;
  bucketMs: number;
  counts: number[];
}

/** Segments one request may read; a page can end short of `limit` with a non-null `next`. */
export const MAX_SEGMENTS_PER_READ = 30;

// Marks a segment as loaded (an empty segment is still an answer): score -1, below every offset.
const LOADED = '~';

export interface ReplayOptions {
  archive: Archive;
  /** The replay Redis (REPLAY_REDIS_URL); null runs with the local cache and MySQL only. */
  redis: Redis | null;
  segmentMs: number;
  redisTtlS: number;
  /** Budget of this process's segment cache, in bytes. */
  cacheBytes: number;
  /** A segment this recent may still be receiving archived messages: not cached (briefly locally). */
  settleMs: number;
  /**
   * Archived up to (ms, the archivers' committed watermark; null = unknown). A segment is cached
   * only when it ends at or below it, so a stalled or lagging archiver never gets a partial
   * segment cached. Absent: the settle window alone decides.
   */
  archivedThrough?: () => Promise<number | null>;
  /** Tells the other fronts to drop a live's local segments (REPLAY_CHANNEL). */
  announce?: (liveId: string) => Promise<void>;
  logger?: Logger;
  /** Messages sent with a stale live cache can carry offsets a little past the end. */
  endSlackMs?: number;
}

export interface ReplayQuery {
  from: number;
  /** Exclusive. */
  to?: number;
  types: ReadonlySet<MessageType>;
  limit: number;
}

export interface ReplayPage {
  /** Message JSON strings, offsetMs order. */
  messages: string[];
  /** `from` of the next page, or null when the window has been read to its end. */
  next: number | null;
}

/**
 * The replay read path: this process's LRU (bounded in bytes) -> replay Redis (sorted sets,
 * score = offsetMs, one per segment, with a TTL) -> MySQL. A miss loads the whole segment once
 * however many requests want it at the same moment (the LRU's fetch joins them).
 */
export class ReplayReader {
  private readonly segments: LRUCache<string, Segment, LiveRecord>;
  private readonly lives: LRUCache<string, LiveEntry>;
  private readonly densities = new LRUCache<string, Density>({ max: 2000 });
  private readonly endSlackMs: number;

  constructor(private readonly options: ReplayOptions) {
    this.endSlackMs = options.endSlackMs ?? 5000;
    this.segments = new LRUCache<string, Segment, LiveRecord>({
      maxSize: Math.max(1, options.cacheBytes),
      sizeCalculation: (seg) => seg.bytes + 64,
      ttl: options.redisTtlS * 1000,
      fetchMethod: (key, _stale, { options: fetchOptions, context }) => this.load(key, context, fetchOptions),
      // A small cache under load evicts entries while they are still loading: let the load finish
      // and answer the requests waiting on it rather than abort them.
      ignoreFetchAbort: true,
      allowStaleOnFetchAbort: true,
    });
    this.lives = new LRUCache<string, LiveEntry>({
      max: 10_000,
      fetchMethod: async (liveId, _stale, { options: fetchOptions }) => {
        const live = await options.archive.live(liveId);
        const lastOffsetMs = live ? await options.archive.lastOffset(liveId) : null;
        // A finished live never changes (an import drops the entry); an unknown or running one is looked up again soon.
        fetchOptions.ttl = live?.endedAt ? 10 * 60_000 : 1000;
        return { live, lastOffsetMs };
      },
    });
  }

  async live(liveId: string): Promise<LiveRecord> {
    return (await this.entry(liveId)).live;
  }

  private async entry(liveId: string): Promise<{ live: LiveRecord; lastOffsetMs: number | null }> {
    const entry = await this.lives.fetch(liveId);
    if (!entry?.live) throw new ApiError(404, 'live_not_found', `There is no live ${liveId}.`);
    return { live: entry.live, lastOffsetMs: entry.lastOffsetMs };
  }

  /** Where a live's messages end: its length (so far), or its latest message when that is later. */
  private span(entry: { live: LiveRecord; lastOffsetMs: number | null }, now: number): number {
    const { live, lastOffsetMs } = entry;
    const length = Math.max(0, (live.endedAt ?? now) - live.startedAt);
    // Messages sent in the moments after the end (a stale live state) do not make it longer; imported ones past it do.
    return lastOffsetMs !== null && lastOffsetMs >= length + this.endSlackMs ? lastOffsetMs + 1 : length;
  }

  async read(liveId: string, query: ReplayQuery, now = Date.now()): Promise<ReplayPage> {
    const entry = await this.entry(liveId);
    const { live } = entry;
    const { segmentMs } = this.options;
    const horizon = this.span(entry, now) + this.endSlackMs;
    const to = Math.min(query.to ?? Number.POSITIVE_INFINITY, horizon + 1);
    const messages: string[] = [];
    let last = -1;
    const first = Math.floor(query.from / segmentMs);
    for (let seg = first; seg * segmentMs < to; seg++) {
      // A sparse filter over a long live must not make one request load the whole live: stop
      // after a bounded number of segments and let the client continue from `next`.
      if (seg - first >= MAX_SEGMENTS_PER_READ) return { messages, next: seg * segmentMs };
      const segment = await this.segment(live, seg);
      for (const item of segment.items) {
        if (item.o < query.from || item.o >= to || !query.types.has(item.t)) continue;
        // A page ends between two offsets, never inside one, so `next` neither skips nor repeats.
        if (messages.length >= query.limit && item.o !== last) return { messages, next: item.o };
        messages.push(item.j);
        last = item.o;
      }
    }
    return { messages, next: null };
  }

  /**
   * How many messages of `types` fall in each of `buckets` equal spans of the live: the same
   * messages `read` pages through (the same segments and caches, the same end), so the counts add
   * up to what a replay shows. A finished live's answer is kept like its segments; a running
   * live's for a second.
   */
  async density(liveId: string, buckets: number, types: ReadonlySet<MessageType>, now = Date.now()): Promise<Density> {
    const key = `${liveId}:${buckets}:${[...types].sort().join(',')}`;
    const cached = this.densities.get(key);
    if (cached) return cached;
    const entry = await this.entry(liveId);
    const { live } = entry;
    const durationMs = Math.max(1, this.span(entry, now));
    const bucketMs = Math.ceil(durationMs / buckets);
    const end = durationMs + this.endSlackMs;
    const counts = new Array<number>(buckets).fill(0);
    const { segmentMs, settleMs } = this.options;
    for (let seg = 0; seg * segmentMs < end; seg++) {
      for (const item of (await this.segment(live, seg)).items) {
        if (item.o >= end || !types.has(item.t)) continue;
        // Sent in the moments after the end (a stale live state): the last span's.
        counts[Math.min(buckets - 1, Math.floor(item.o / bucketMs))]! += 1;
      }
    }
    const density: Density = { liveId, durationMs, bucketMs, counts };
    const settled = live.endedAt !== null && now - live.endedAt >= settleMs && (await this.archivedPast(live.endedAt));
    this.densities.set(key, density, { ttl: settled ? this.options.redisTtlS * 1000 : Math.min(1000, settleMs) });
    return density;
  }

  /** Drops every cached segment of a live here and in the replay Redis, and tells the other fronts. */
  async invalidate(liveId: string): Promise<void> {
    this.dropLocal(liveId);
    const redis = this.usableRedis();
    if (redis) {
      try {
        const keys = await redis.smembers(replayKeys.segments(liveId));
        await redis.del(replayKeys.segments(liveId), ...keys);
      } catch (err) {
        // The tombstone in MySQL stands; the Redis copy expires with its TTL.
        replayRedisErrors.inc();
        this.options.logger?.warn({ err, liveId }, 'replay Redis segments not dropped');
      }
    }
    await this.options.announce?.(liveId).catch((err: unknown) => this.options.logger?.warn({ err }, 'replay invalidation not announced'));
  }

  /** A live's record changed (its video links): this front and the others read it again. */
  async liveChanged(liveId: string): Promise<void> {
    this.lives.delete(liveId);
    await this.options.announce?.(liveId).catch((err: unknown) => this.options.logger?.warn({ err }, 'live change not announced'));
  }

  /** Drops this process's segments of a live (a REPLAY_CHANNEL event). */
  dropLocal(liveId: string): void {
    const prefix = `${liveId}:`;
    for (const key of this.segments.keys()) if (key.startsWith(prefix)) this.segments.delete(key);
    for (const key of this.densities.keys()) if (key.startsWith(prefix)) this.densities.delete(key);
    this.lives.delete(liveId);
  }

  /** Drops every local segment (after missing invalidations while disconnected). */
  clearLocal(): void {
    this.segments.clear();
    this.densities.clear();
    this.lives.clear();
  }

  /** Bytes held by the local cache (for tests and the stats page). */
  get cachedBytes(): number {
    return this.segments.calculatedSize;
  }

  private async segment(live: LiveRecord, seg: number): Promise<Segment> {
    const status: LRUCache.Status<string, Segment, LiveRecord> = {};
    const segment = await this.segments.fetch(`${live.liveId}:${seg}`, { context: live, status });
    if (status.fetch === 'hit') segmentReads.inc({ tier: 'local' });
    else if (status.fetch === 'inflight') segmentReads.inc({ tier: 'inflight' });
    // Evicted before it could be stored (a cache smaller than the working set): read it anyway.
    return segment ?? this.load(`${live.liveId}:${seg}`, live, {});
  }

  private watermark: { value: number | null; at: number } | null = null;

  /** Whether the archivers have stored everything stamped up to `ts` (watermark read at most every 500 ms). */
  private async archivedPast(ts: number): Promise<boolean> {
    const read = this.options.archivedThrough;
    if (!read) return true;
    const now = Date.now();
    const behind = (this.watermark?.value ?? 0) < ts;
    if (!this.watermark || now - this.watermark.at > (behind ? 100 : 500)) {
      try {
        this.watermark = { value: await read(), at: now };
      } catch {
        watermarkUnknown.inc();
        return false;
      }
    }
    const finished = this.watermark.value !== null && this.watermark.value >= ts;
    if (!finished) unfinished.inc();
    return finished;
  }

  private usableRedis(): Redis | null {
    const redis = this.options.redis;
    // Not connected: straight to MySQL, no waiting on a client that cannot answer.
    return redis && redis.status === 'ready' ? redis : null;
  }

  private async load(key: string, live: LiveRecord, fetchOptions: LRUCache.FetcherFetchOptions<string, Segment, LiveRecord>): Promise<Segment> {
    const seg = Number(key.slice(key.lastIndexOf(':') + 1));
    const { segmentMs, settleMs } = this.options;
    const from = seg * segmentMs;
    const now = Date.now();
    const settledByTime = live.endedAt !== null ? now - live.endedAt >= settleMs : live.startedAt + from + segmentMs <= now - settleMs;
    // The newest stamp the segment can hold: its end, or the live's end (sends stamped from a stale
    // live state just after it are what the settle window is for).
    const segmentEnd = live.startedAt + Math.min(from + segmentMs, live.endedAt !== null ? live.endedAt - live.startedAt : Number.POSITIVE_INFINITY);
    const settled = settledByTime && (await this.archivedPast(segmentEnd));
    const redis = settled ? this.usableRedis() : null;

    if (redis) {
      try {
        const flat = await redis.zrange(replayKeys.segment(live.liveId, seg), 0, -1, 'WITHSCORES');
        if (flat.length > 0) {
          segmentReads.inc({ tier: 'redis' });
          return fromRedis(flat);
        }
      } catch (err) {
        replayRedisErrors.inc();
        this.options.logger?.debug({ err }, 'replay Redis read failed; reading MySQL');
      }
    }

    const rows = await this.options.archive.readWindow(live.liveId, from, from + segmentMs);
    segmentReads.inc({ tier: 'mysql' });
    const segment = fromRows(rows);
    if (!settled) {
      // Still being archived: good for a moment (many viewers of a running live), not for long.
      fetchOptions.ttl = Math.min(1000, settleMs);
    } else if (redis) {
      void this.store(redis, live.liveId, seg, rows);
    }
    return segment;
  }

  private async store(redis: Redis, liveId: string, seg: number, rows: ReplayRow[]): Promise<void> {
    const key = replayKeys.segment(liveId, seg);
    const ttl = this.options.redisTtlS;
    const args: (string | number)[] = [-1, LOADED];
    for (const r of rows) args.push(r.offsetMs, `${r.type}|${r.body}`);
    try {
      await redis
        .multi()
        .del(key)
        .zadd(key, ...args)
        .expire(key, ttl)
        .sadd(replayKeys.segments(liveId), key)
        .expire(replayKeys.segments(liveId), ttl)
        .exec();
    } catch (err) {
      replayRedisErrors.inc();
      this.options.logger?.debug({ err }, 'replay segment not written to Redis');
    }
  }
}

function fromRows(rows: readonly ReplayRow[]): Segment {
  let bytes = 0;
  const items = rows.map((r) => {
    bytes += r.body.length * 2 + 48;
    return { o: r.offsetMs, t: r.type, j: r.body };
  });
  return { items, bytes };
}

function fromRedis(flat: string[]): Segment {
  const items: Item[] = [];
  let bytes = 0;
  for (let i = 0; i < flat.length; i += 2) {
    const member = flat[i] as string;
    if (member === LOADED) continue;
    const bar = member.indexOf('|');
    const j = member.slice(bar + 1);
    items.push({ o: Number(flat[i + 1]), t: member.slice(0, bar) as MessageType, j });
    bytes += j.length * 2 + 48;
  }
  return { items, bytes };
}
