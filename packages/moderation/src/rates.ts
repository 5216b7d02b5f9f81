import { counter, type Logger } from '@danmaku/observability';
import { defineScripts, execSpread, guard, registerScripts, type Command, type Redis } from '@danmaku/store';

// Adds what a process counted on its own to the shared counter and returns {total, ms left}. A new
// counter gets the ms its window has left as the process counted it (ARGV[2]), so the window starts
// with the first send, not with the sync that brought it. KEYS: the counter. ARGV: counted, ms left.
const RATE_ADD_LUA = `
local total = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
return {total, ttl}
`;
// The same, then one more send only if it fits under the limit: {1 taken | 0 refused, total, ms left}.
// ARGV: counted, ms left, limit.
const RATE_TAKE_LUA = `
local total = redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]); ttl = tonumber(ARGV[2]) end
if total + 1 > tonumber(ARGV[3]) then return {0, total, ttl} end
return {1, redis.call('INCR', KEYS[1]), ttl}
`;

interface RateRedis extends Redis {
  dmRateAdd(key: string, counted: number, windowMs: number): Promise<[number, number]>;
  dmRateTake(key: string, counted: number, windowMs: number, limit: number): Promise<[number, number, number]>;
}

const RATE_SCRIPTS = registerScripts({
  dmRateAdd: { keys: 1, lua: RATE_ADD_LUA },
  dmRateTake: { keys: 1, lua: RATE_TAKE_LUA },
});

const syncs = counter<'result'>({ name: 'danmaku_rate_syncs_total', help: 'Background syncs of the local rate counters with Redis, by result', labelNames: ['result'] });
const askedRedis = counter({ name: 'danmaku_rate_asked_total', help: 'Sends whose rate limit was decided by Redis on the request path (a counter past its local share of the limit)' });

export interface SharedRatesOptions {
  redis: Redis;
  windowMs: number;
  /**
   * The part of a limit (0-1) a process hands out on its own knowledge; past it each send asks
   * Redis, so the limit holds exactly near its end. A user whose sends are spread over k processes
   * within one sync gets at most (1 + (k - 1) * share) times the limit.
   */
  localShare: number;
  /** How long counted sends wait before they are added to Redis, all in one round trip. */
  syncMs: number;
  logger?: Logger;
}

interface Count {
  /** The shared total as Redis last answered it (our own sends included). */
  synced: number;
  /** Counted here, not yet sent to Redis. */
  pending: number;
  /** Sent to Redis, answer not yet back. */
  sending: number;
  /** When the window ends, as Redis last said (a local guess until it has). */
  endsAt: number;
}

/** The ms the count's window has left (at least 1). */
const leftMs = (count: Count, now: number): number => Math.max(1, count.endsAt - now);

/** The count's window is over and no answer about it is on its way. */
const ended = (count: Count, now: number): boolean => now >= count.endsAt && count.sending === 0;

/**
 * Rate limits shared by every process through Redis without a Redis round trip per send: each
 * process counts sends locally and adds its counts to the shared counters in the background, one
 * pipeline every `syncMs`; a counter nearing its limit is decided by Redis, atomically, on the
 * request path. While Redis does not answer, each process still holds the limit on its own.
 */
export class SharedRates {
  private readonly counts = new Map<string, Count>();
  private readonly redis: RateRedis;
  private syncTimer: NodeJS.Timeout | null = null;
  private sweepTimer: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(private readonly options: SharedRatesOptions) {
    this.redis = defineScripts<RateRedis>(options.redis, RATE_SCRIPTS);
  }

  /** Counts one send against `key`: 0 when it may go, else the ms until the window ends. */
  async take(key: string, limit: number, now = Date.now()): Promise<number> {
    const count = this.current(key, now);
    const known = count.synced + count.sending + count.pending;
    if (known + 1 > limit) return leftMs(count, now);
    if (known + 1 <= Math.floor(limit * this.options.localShare)) {
      count.pending++;
      this.scheduleSync();
      return 0;
    }
    askedRedis.inc();
    const carried = count.pending;
    count.pending = 0;
    count.sending += carried + 1;
    try {
      const [taken, total, ttl] = await guard(() => this.redis.dmRateTake(key, carried, leftMs(count, now), limit));
      count.synced = Number(total);
      count.endsAt = Date.now() + Number(ttl);
      return Number(taken) === 1 ? 0 : Math.max(1, Number(ttl));
    } catch (err) {
      // Redis away: the counted sends wait for the next sync, and this one is decided here, on what
      // was known when it came (sends in flight beside it included), which left room for it.
      count.pending += carried + 1;
      this.scheduleSync();
      this.options.logger?.debug({ err }, 'rate limit decided locally');
      return 0;
    } finally {
      count.sending -= carried + 1;
    }
  }

  /** Adds every pending count to Redis in one round trip (one pipeline per node on a cluster). */
  async sync(): Promise<void> {
    this.clearSyncTimer();
    const sent: [string, Count, number][] = [];
    for (const [key, count] of this.counts) {
      if (count.pending === 0) continue;
      sent.push([key, count, count.pending]);
      count.sending += count.pending;
      count.pending = 0;
    }
    if (sent.length === 0) return;
    const now = Date.now();
    const commands: Command[] = sent.map(([key, count, n]) => ['dmRateAdd', key, n, leftMs(count, now)]);
    let replies: [Error | null, unknown][];
    try {
      replies = await guard(() => execSpread(this.redis, commands));
    } catch (err) {
      replies = sent.map(() => [err as Error, null]);
    }
    const at = Date.now();
    let failed = 0;
    sent.forEach(([, count, n], i) => {
      count.sending -= n;
      const [err, value] = replies[i] ?? [new Error('no reply'), null];
      if (err) {
        failed++;
        count.pending += n;
        return;
      }
      const [total, ttl] = value as [number, number];
      count.synced = Number(total);
      count.endsAt = at + Number(ttl);
    });
    syncs.inc({ result: failed ? 'failed' : 'ok' });
    if (failed) {
      this.options.logger?.debug({ failed }, 'rate counts not synced; kept for the next sync');
      this.scheduleSync();
    }
    this.scheduleSweep();
  }

  /** Counters held (keys seen in their current window). */
  get size(): number {
    return this.counts.size;
  }

  /** Sends what is pending (best effort) and stops the timers. */
  stop(): void {
    this.stopped = true;
    void this.sync();
    this.clearSyncTimer();
    if (this.sweepTimer) clearTimeout(this.sweepTimer);
    this.sweepTimer = null;
  }

  private current(key: string, now: number): Count {
    let count = this.counts.get(key);
    if (count && ended(count, now)) {
      // A new window. Counts of the old one not yet sent are dropped with it.
      this.counts.delete(key);
      count = undefined;
    }
    if (!count) {
      count = { synced: 0, pending: 0, sending: 0, endsAt: now + this.options.windowMs };
      this.counts.set(key, count);
      this.scheduleSweep();
    }
    return count;
  }

  private scheduleSync(): void {
    if (this.syncTimer || this.stopped) return;
    this.syncTimer = setTimeout(() => void this.sync(), this.options.syncMs);
    this.syncTimer.unref();
  }

  private clearSyncTimer(): void {
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncTimer = null;
  }

  // Ended windows are dropped once a window, not on a timer of their own each: no wake-ups while idle.
  private scheduleSweep(): void {
    if (this.sweepTimer || this.stopped) return;
    this.sweepTimer = setTimeout(() => {
      this.sweepTimer = null;
      const now = Date.now();
      for (const [key, count] of this.counts) if (ended(count, now)) this.counts.delete(key);
      if (this.counts.size > 0) this.scheduleSweep();
    }, this.options.windowMs);
    this.sweepTimer.unref();
  }
}
