import { MESSAGE_TYPES, type MessageType } from '@danmaku/protocol';
import { counter, gauge, type Logger } from '@danmaku/observability';
import { DELETED_CHANNEL, parseMessagesDeleted, redisSeconds, type MessageLog, type Signals, type Subscription } from '@danmaku/store';

/** One stored message as the cache keeps it: parsed once for seq, ts and id, served as its JSON. */
export interface CachedMessage {
  seq: number;
  ts: number;
  id: string;
  json: string;
}

/**
 * The recent window of one (room, type). It is built only from consecutive reads of the store,
 * each of which is atomic and complete up to its newest seq (invariant 1), so it holds every
 * retained message with base < seq <= newestSeq, minus deleted ones.
 */
export class StreamWindow {
  entries: CachedMessage[] = [];
  base = 0;
  newestSeq = 0;

  /** Index of the first entry with seq > `seq`. */
  after(seq: number): number {
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.entries[mid] as CachedMessage).seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface RoomCacheOptions {
  store: MessageLog;
  /** Room signals for deleted messages; none: deletes show within a refresh of the whole room. */
  signals?: Signals;
  /** Messages kept per (room, type): the store's retention, so the cache answers what Redis would. */
  window: number;
  refreshMs: number;
  bigOnline: number;
  bigPollRate: number;
  coolMs: number;
  logger: Logger;
}

interface RoomState {
  polls: number;
  /** Polls per second over the last tick. */
  rate: number;
  online: number;
  big: boolean;
  calmSince: number | null;
  lastPoll: number;
  streams: Map<MessageType, StreamWindow> | null;
  refreshing: boolean;
  /**
   * Whole answers, by query: the viewers of a big room poll with the same few cursors (they all
   * advanced to the newest one), so an answer is built once per refresh and then only sent.
   */
  answers: Map<string, Buffer>;
}

const MAX_ANSWERS_PER_ROOM = 512;

const cachedRooms = gauge({ name: 'danmaku_front_cached_rooms', help: 'Rooms this front serves from its local cache' });
const refreshes = counter<'result'>({ name: 'danmaku_front_cache_refreshes_total', help: 'Local cache refreshes from Redis', labelNames: ['result'] });
const bigRoomChanges = counter<'to'>({ name: 'danmaku_front_big_room_changes_total', help: 'Rooms that became big (cached) or small again', labelNames: ['to'] });


/**
 * The front's local cache of big rooms, whose polls would otherwise saturate the Redis replicas.
 * A room is big when its poll rate on this front or its online count passes a threshold; from
 * then on one refresh per interval (single flight per room) reads what is new for all its types
 * in one round trip, and its polls are answered from memory. A room under both thresholds for `coolMs` drops its cache.
 */
export class RoomCache {
  private readonly rooms = new Map<string, RoomState>();
  /** Ids deleted lately (id -> forget after): a refresh in flight during a delete must not bring one back. */
  private readonly deleted = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private subscription: Subscription | null = null;
  private lastTick = Date.now();

  constructor(private readonly options: RoomCacheOptions) {}

  async start(): Promise<void> {
    const { signals } = this.options;
    if (signals) {
      this.subscription = await signals
        .subscribe([DELETED_CHANNEL], (channel, text) => {
          if (channel === DELETED_CHANNEL) this.onDeleted(text);
        })
        .catch((err: unknown) => {
          this.options.logger.warn({ err }, 'cannot subscribe to deletions; cached rooms reload instead');
          return null;
        });
    }
    this.timer = setInterval(() => this.tick(), this.options.refreshMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    void this.subscription?.close();
    this.subscription = null;
  }

  private state(roomId: string): RoomState {
    let state = this.rooms.get(roomId);
    if (!state) {
      state = { polls: 0, rate: 0, online: 0, big: false, calmSince: null, lastPoll: Date.now(), streams: null, refreshing: false, answers: new Map() };
      this.rooms.set(roomId, state);
    }
    return state;
  }

  /** Counts a poll (the poll-rate half of "big"); returns whether the room is big. */
  notePoll(roomId: string): boolean {
    const state = this.state(roomId);
    state.polls++;
    return state.big;
  }

  /** The online count, whenever a route learned it (enter, leave, room info). */
  noteOnline(roomId: string, online: number): void {
    const state = this.state(roomId);
    state.online = online;
    if (online >= this.options.bigOnline && !state.big) this.becomeBig(roomId, state);
  }

  isBig(roomId: string): boolean {
    return this.rooms.get(roomId)?.big ?? false;
  }

  /** A ready answer of a cached room for this query (see RoomState.answers). */
  answer(roomId: string, key: string): Buffer | undefined {
    return this.rooms.get(roomId)?.answers.get(key);
  }

  /** Kept encoded: sending a Buffer skips the UTF-8 encoding of every copy. */
  remember(roomId: string, key: string, body: string): void {
    const state = this.rooms.get(roomId);
    if (state?.streams && state.answers.size < MAX_ANSWERS_PER_ROOM) state.answers.set(key, Buffer.from(body, 'utf8'));
  }

  /** The cached window of a stream, or null while the room is not cached (or not loaded yet). */
  window(roomId: string, type: MessageType): StreamWindow | null {
    return this.rooms.get(roomId)?.streams?.get(type) ?? null;
  }

  private becomeBig(roomId: string, state: RoomState): void {
    state.big = true;
    state.calmSince = null;
    bigRoomChanges.inc({ to: 'big' });
    cachedRooms.inc();
    void this.refresh(roomId, state);
  }

  /** Once per interval: poll rates, big/small decisions, and the refresh of every big room. */
  private tick(now = Date.now()): void {
    const seconds = Math.max(0.001, (now - this.lastTick) / 1000);
    this.lastTick = now;
    for (const [id, until] of this.deleted) if (until < now) this.deleted.delete(id);
    for (const [roomId, state] of this.rooms) {
      state.rate = state.polls / seconds;
      if (state.polls > 0) state.lastPoll = now;
      state.polls = 0;
      // A room nobody polls on this front needs no cache here, however many viewers it has.
      const polled = now - state.lastPoll < this.options.coolMs;
      const hot = polled && (state.rate >= this.options.bigPollRate || state.online >= this.options.bigOnline);
      if (hot) {
        state.calmSince = null;
        if (!state.big) this.becomeBig(roomId, state);
        else void this.refresh(roomId, state);
      } else if (state.big) {
        state.calmSince ??= now;
        if (now - state.calmSince >= this.options.coolMs) {
          state.big = false;
          state.streams = null;
          state.answers.clear();
          bigRoomChanges.inc({ to: 'small' });
          cachedRooms.dec();
        } else {
          void this.refresh(roomId, state);
        }
      } else if (now - state.lastPoll > this.options.coolMs) {
        this.rooms.delete(roomId);
      }
    }
  }

  /** Single flight: a refresh still running when the next tick comes is not doubled. */
  private async refresh(roomId: string, state: RoomState): Promise<void> {
    if (state.refreshing) return;
    state.refreshing = true;
    const started = performance.now();
    try {
      const streams = state.streams ?? new Map<MessageType, StreamWindow>();
      const wants = MESSAGE_TYPES.map((type) => ({ type, cursorSeq: state.streams ? (streams.get(type)?.newestSeq ?? 0) : null }));
      const results = await this.options.store.readMany(roomId, wants, this.options.window);
      redisSeconds.observe({ op: 'cache_refresh' }, (performance.now() - started) / 1000);
      for (const { type } of wants) {
        const result = results.get(type);
        if (!result) continue;
        let window = streams.get(type);
        if (!window) {
          window = new StreamWindow();
          streams.set(type, window);
        }
        const fresh = result.messages.map(toCached).filter((m): m is CachedMessage => m !== null && !this.deleted.has(m.id));
        if (!state.streams || result.skipped || result.newestSeq < window.newestSeq) {
          // First load, a gap (more new messages than retention) or a reset store: take the window whole.
          window.entries = fresh;
          window.base = fresh.length > 0 ? (fresh[0] as CachedMessage).seq - 1 : result.newestSeq;
        } else if (fresh.length > 0) {
          window.entries.push(...fresh);
          const excess = window.entries.length - this.options.window;
          if (excess > 0) {
            window.base = (window.entries[excess - 1] as CachedMessage).seq;
            window.entries.splice(0, excess);
          }
        }
        // The last seq read, not the store's newest: a read capped by its limit is complete only up to there.
        window.newestSeq = result.cursorSeq;
      }
      // Only a big room keeps what was read: it may have cooled while the read was in flight.
      if (state.big) state.streams = streams;
      // Answers live one refresh at most: new messages, and big-room spans move with the clock.
      state.answers.clear();
      refreshes.inc({ result: 'ok' });
    } catch (err) {
      // Redis trouble: keep serving the last window (stale beats down) and try again next tick.
      refreshes.inc({ result: 'error' });
      this.options.logger.debug({ err, roomId }, 'cache refresh failed');
    } finally {
      state.refreshing = false;
    }
  }

  private onDeleted(text: string): void {
    const event = parseMessagesDeleted(text);
    if (!event) return;
    const state = this.rooms.get(event.roomId);
    if (!state?.big) return;
    const forgetAt = Date.now() + 10 * this.options.refreshMs;
    for (const id of event.ids) this.deleted.set(id, forgetAt);
    const window = state.streams?.get(event.type);
    if (!window) return;
    const ids = new Set(event.ids);
    window.entries = window.entries.filter((m) => !ids.has(m.id));
    state.answers.clear();
  }
}

export function toCached(json: string): CachedMessage | null {
  try {
    const parsed = JSON.parse(json) as { seq: number; ts: number; id: string };
    return { seq: parsed.seq, ts: parsed.ts, id: parsed.id, json };
  } catch {
    return null;
  }
}
