import type { MessageType } from '@danmaku/protocol';
import { counter, gauge, type Logger } from '@danmaku/observability';
import { channels, DELETED_CHANNEL, parseMessagesDeleted, redisSeconds, type MessageLog, type ReadResult, type Signals, type Subscription } from '@danmaku/store';
import { StreamWindow, toCached, type CachedMessage } from './room-cache.js';

/**
 * The polls of small rooms, answered from memory. A front keeps the newest messages of every
 * (room, type) it is polled for, and reads Redis only when the processor says the stream advanced
 * (the "advanced" signal, which carries the new seq): Redis sees a read per advance per front,
 * not per poll. Each window is built from consecutive complete reads of the store (invariant 1),
 * so it holds every retained message with base < seq <= newestSeq, minus deleted ones; an answer
 * it cannot give exactly as the store would (a cursor below base or above newestSeq, a first
 * page longer than the window) is left to Redis.
 *
 * Trust rests on the subscription: until it is up, and from the moment it is lost until it is back
 * and every window has caught up, nothing is answered from memory.
 */
export interface PollMemoryOptions {
  store: MessageLog;
  signals: Signals;
  /** Most streams held; the least recently polled leave first. 0: off. */
  maxStreams: number;
  /** Messages kept per stream (at most the store's retention). */
  window: number;
  /** A stream not polled for this long leaves. */
  idleMs: number;
  logger: Logger;
}

/** The store's answer to a poll of one stream (as readMany gives it), with the window's newest seq. */
export interface MemoryRead {
  messages: string[];
  cursorSeq: number;
  newestSeq: number;
}

interface Held {
  roomId: string;
  type: MessageType;
  window: StreamWindow;
  /** Messages older than base are all held: the store's retention is not cut by this window. */
  whole: boolean;
  loaded: boolean;
  /** Highest seq announced: reads continue until newestSeq reaches it. */
  wanted: number;
  reading: Promise<void> | null;
  lastPoll: number;
}

const keyOf = (roomId: string, type: MessageType): string => `${roomId}\n${type}`;

const heldStreams = gauge({ name: 'danmaku_front_memory_streams', help: 'Streams (room, type) this front keeps in memory for small-room polls' });
const memoryReads = counter<'reason'>({ name: 'danmaku_front_memory_reads_total', help: 'Redis reads of the poll memory, by cause (load, advanced, catch_up)', labelNames: ['reason'] });
const carriedAdvances = counter({ name: 'danmaku_front_memory_carried_total', help: 'Advances whose messages the poll memory took from the signal itself, without a Redis read' });
const evictions = counter<'why'>({ name: 'danmaku_front_memory_evictions_total', help: 'Streams that left the poll memory (idle, cap)', labelNames: ['why'] });

export class PollMemory {
  /** Insertion order is recency order: a poll moves its stream to the end. */
  private readonly streams = new Map<string, Held>();
  /** Ids deleted lately (id -> forget after): a read in flight during a delete must not bring one back. */
  private readonly deleted = new Map<string, number>();
  private subscription: Subscription | null = null;
  private live = false;
  /** Bumped whenever the subscription is lost: a catch-up started before a loss does not make memory live. */
  private epoch = 0;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly window: number;

  constructor(private readonly options: PollMemoryOptions) {
    this.window = Math.max(1, Math.min(options.window, options.store.retention));
  }

  /** Streams held now. */
  get size(): number {
    return this.streams.size;
  }

  /** Whether polls may be answered from memory now (subscribed and caught up). */
  get isLive(): boolean {
    return this.live;
  }

  get enabled(): boolean {
    return this.options.maxStreams > 0;
  }

  async start(): Promise<void> {
    if (!this.enabled) return;
    this.sweeper = setInterval(() => this.sweep(), Math.max(100, Math.floor(this.options.idleMs / 4)));
    this.sweeper.unref();
    try {
      this.subscription = await this.options.signals.subscribe(
        [...channels.allAdvanced(), DELETED_CHANNEL],
        (channel, text) => (channel === DELETED_CHANNEL ? this.onDeleted(text) : this.onAdvanced(text)),
        () => void this.catchUp(),
        () => this.lose(),
      );
      this.live = true;
    } catch (err) {
      this.options.logger.warn({ err }, 'cannot subscribe to room signals; small-room polls read Redis');
    }
  }

  stop(): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.live = false;
    void this.subscription?.close();
    this.subscription = null;
    this.streams.clear();
    heldStreams.set(0);
  }

  /**
   * The answer to a poll of these streams, exactly as the store would give it now, or null when
   * memory cannot give it (not live, not loaded, a cursor outside the window): then Redis answers.
   * A stream polled for the first time is loaded before the answer (one read, as Redis would cost).
   */
  async read(roomId: string, wants: readonly { type: MessageType; cursorSeq: number | null }[], limit: number): Promise<Map<MessageType, MemoryRead> | null> {
    if (!this.live) return null;
    const now = Date.now();
    const held = wants.map((w) => this.hold(roomId, w.type, now));
    const pending = held.filter((h) => !h.loaded).map((h) => this.refresh(h, 'load'));
    if (pending.length > 0) await Promise.all(pending);
    if (!this.live) return null;
    const out = new Map<MessageType, MemoryRead>();
    for (let i = 0; i < wants.length; i++) {
      const h = held[i] as Held;
      const answer = h.loaded ? this.answer(h, (wants[i] as { cursorSeq: number | null }).cursorSeq, limit) : null;
      if (!answer) return null;
      out.set(h.type, answer);
    }
    return out;
  }

  /** The store's read semantics (toReadResult) on the window, or null where only Redis knows. */
  private answer(h: Held, cursorSeq: number | null, limit: number): MemoryRead | null {
    const { entries, base, newestSeq } = h.window;
    let start: number;
    if (cursorSeq === null) {
      // The store's first page is its newest `limit` retained messages: held only if the window has them all.
      if (entries.length < limit && !h.whole) return null;
      start = Math.max(0, entries.length - limit);
    } else {
      // Ahead of memory (another front, a store reset) or older than it: Redis knows.
      if (cursorSeq > newestSeq || cursorSeq < base) return null;
      start = h.window.after(cursorSeq);
    }
    const end = Math.min(entries.length, start + limit);
    const messages: string[] = [];
    for (let i = start; i < end; i++) messages.push((entries[i] as CachedMessage).json);
    const last = end > start ? (entries[end - 1] as CachedMessage).seq : (cursorSeq ?? newestSeq);
    return { messages, cursorSeq: last, newestSeq };
  }

  private hold(roomId: string, type: MessageType, now: number): Held {
    const key = keyOf(roomId, type);
    let h = this.streams.get(key);
    if (h) {
      this.streams.delete(key);
    } else {
      h = { roomId, type, window: new StreamWindow(), whole: false, loaded: false, wanted: 0, reading: null, lastPoll: now };
      while (this.streams.size >= this.options.maxStreams) {
        this.streams.delete(this.streams.keys().next().value as string);
        evictions.inc({ why: 'cap' });
      }
    }
    h.lastPoll = now;
    this.streams.set(key, h);
    heldStreams.set(this.streams.size);
    return h;
  }

  /**
   * Single flight per stream: reads from the window's newest seq until it reaches every seq
   * announced meanwhile. Resolves when the window is up to date with what was asked of it.
   */
  private refresh(h: Held, reason: 'load' | 'advanced' | 'catch_up'): Promise<void> {
    h.reading ??= this.readUntilFresh(h, reason).finally(() => {
      h.reading = null;
    });
    return h.reading;
  }

  private async readUntilFresh(h: Held, reason: 'load' | 'advanced' | 'catch_up'): Promise<void> {
    const { store, logger } = this.options;
    try {
      for (let i = 0; i < 30; i++) {
        const cursor = h.loaded ? h.window.newestSeq : null;
        const started = performance.now();
        memoryReads.inc({ reason: i === 0 ? reason : 'advanced' });
        const result = await store.readSince(h.roomId, h.type, cursor, this.window);
        redisSeconds.observe({ op: 'poll_memory' }, (performance.now() - started) / 1000);
        const complete = this.merge(h, cursor, result);
        if (complete && h.window.newestSeq >= h.wanted) return;
        // Complete yet behind the announcement: a replica still catching up. Give it a moment.
        if (complete) await new Promise((resolve) => setTimeout(resolve, Math.min(200, 5 * 2 ** i)));
      }
    } catch (err) {
      // Redis trouble: the stream reloads whole at its next poll, which Redis answers meanwhile.
      h.loaded = false;
      logger.debug({ err, roomId: h.roomId, type: h.type }, 'poll memory read failed');
    }
  }

  /** Adds one read to the window; false when the read was capped (more follow from its last seq). */
  private merge(h: Held, cursor: number | null, result: ReadResult): boolean {
    const w = h.window;
    const fresh = result.messages.map(toCached).filter((m): m is CachedMessage => m !== null && !this.deleted.has(m.id));
    const full = result.messages.length >= this.window;
    if (cursor === null || result.skipped) {
      // The newest messages, whole: a first load, a gap past retention or a reset store.
      w.entries = fresh;
      w.base = result.messages.length > 0 ? seqOfFirst(result.messages) - 1 : result.newestSeq;
      // Fewer than a window: that is all the store retains, so no older message exists.
      h.whole = !full;
      w.newestSeq = result.newestSeq;
      h.loaded = true;
      return true;
    }
    for (const m of fresh) w.entries.push(m);
    const excess = w.entries.length - this.window;
    if (excess > 0) {
      w.base = (w.entries[excess - 1] as CachedMessage).seq;
      w.entries.splice(0, excess);
      h.whole = false;
    }
    // A capped read is complete only up to its last message.
    w.newestSeq = full ? result.cursorSeq : result.newestSeq;
    return !full;
  }

  private onAdvanced(text: string): void {
    let events: { roomId?: unknown; type?: unknown; seq?: unknown; messages?: unknown }[];
    try {
      events = JSON.parse(text) as typeof events;
    } catch {
      return;
    }
    if (!Array.isArray(events)) return;
    for (const e of events) {
      if (typeof e.roomId !== 'string' || typeof e.seq !== 'number') continue;
      const h = this.streams.get(keyOf(e.roomId, e.type as MessageType));
      if (!h) continue;
      if (e.seq > h.wanted) h.wanted = e.seq;
      if (!h.loaded || h.window.newestSeq >= e.seq) continue;
      if (h.reading === null && Array.isArray(e.messages) && this.take(h, e.seq, e.messages)) {
        carriedAdvances.inc();
        continue;
      }
      void this.refresh(h, 'advanced');
    }
  }

  /**
   * The messages an advance carried, when they continue the window exactly (the first one right
   * after its newest seq, consecutive, the last one the advance's seq): the same as a read would add.
   */
  private take(h: Held, seq: number, messages: unknown[]): boolean {
    const fresh: CachedMessage[] = [];
    let expected = h.window.newestSeq + 1;
    for (const json of messages) {
      const m = typeof json === 'string' ? toCached(json) : null;
      if (!m || m.seq !== expected) return false;
      expected++;
      fresh.push(m);
    }
    if (expected !== seq + 1) return false;
    this.merge(h, h.window.newestSeq, { newestSeq: seq, skipped: false, messages: fresh.map((m) => m.json), cursorSeq: seq });
    return true;
  }

  private onDeleted(text: string): void {
    const event = parseMessagesDeleted(text);
    if (!event) return;
    const h = this.streams.get(keyOf(event.roomId, event.type));
    if (!h) return;
    const forgetAt = Date.now() + 60_000;
    for (const id of event.ids) this.deleted.set(id, forgetAt);
    const ids = new Set(event.ids);
    h.window.entries = h.window.entries.filter((m) => !ids.has(m.id));
  }

  /** Signals may be missing from now on: answer from Redis until the catch-up after resubscription. */
  private lose(): void {
    this.live = false;
    this.epoch++;
  }

  /**
   * Subscribed again: whatever advanced meanwhile went unannounced, so every window reads what it
   * missed (deletions too: those are read whole again) before memory answers again.
   */
  private async catchUp(): Promise<void> {
    const epoch = ++this.epoch;
    this.live = false;
    this.deleted.clear();
    const held = [...this.streams.values()];
    for (const h of held) h.loaded = false;
    await Promise.all(
      held.map(async (h) => {
        // A read in flight may predate the subscription: it ends first, then the stream reloads.
        await h.reading;
        h.loaded = false;
        await this.refresh(h, 'catch_up');
      }),
    );
    if (epoch !== this.epoch) return;
    this.options.logger.info({ streams: held.length }, 'poll memory caught up after resubscribing');
    this.live = true;
  }

  /** Streams nobody polled lately leave; so do old deletion marks. */
  private sweep(now = Date.now()): void {
    for (const [key, h] of this.streams) {
      // Recency order: the first stream polled lately ends the scan.
      if (now - h.lastPoll < this.options.idleMs) break;
      this.streams.delete(key);
      evictions.inc({ why: 'idle' });
    }
    for (const [id, until] of this.deleted) if (until < now) this.deleted.delete(id);
    heldStreams.set(this.streams.size);
  }
}

function seqOfFirst(messages: readonly string[]): number {
  const first = toCached(messages[0] as string);
  return first ? first.seq : 0;
}
