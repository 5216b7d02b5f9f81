import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MessageType } from '@danmaku/protocol';
import { SAMPLED_TYPES, keptBySample } from '@danmaku/switches';
import type { CachedMessage, StreamWindow } from './room-cache.js';

export interface BigRoomRules {
  /** Most messages of a sampled type per poll. */
  limit: number;
  /** Sampled types older than this (ms) are stale on screen and skipped. */
  spanMs: number;
  /** Share of sampled messages kept (the bigRoomSampleRatio switch). */
  ratio: number;
}

export interface WindowRead {
  messages: string[];
  cursorSeq: number;
  skipped: boolean;
}

/** At most `n` of `items`, evenly spread, the newest always kept. */
function thin<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  const out: T[] = [];
  const step = items.length / n;
  for (let i = 1; i <= n; i++) out.push(items[Math.ceil(i * step) - 1] as T);
  return out;
}

/**
 * A poll answered from a cached window, with the store's semantics (invariant 4: a cursor older
 * than the window gets the newest messages and `skipped`), plus the big-room rules for sampled
 * types: a short span, a sample ratio and a hard count. Those thin the stream, so they set
 * `skipped` too: the client sees seq gaps only where `skipped` says so.
 */
export function readWindow(window: StreamWindow, type: MessageType, cursorSeq: number | null, limit: number, rules: BigRoomRules | null, now = Date.now()): WindowRead {
  const { entries, newestSeq } = window;
  // A cursor ahead of this front's cache came from Redis or another front: nothing new here yet.
  if (cursorSeq !== null && cursorSeq >= newestSeq) return { messages: [], cursorSeq, skipped: false };
  const sampled = rules !== null && SAMPLED_TYPES.has(type);
  let skipped = false;
  let start: number;
  if (cursorSeq === null) {
    start = Math.max(0, entries.length - (sampled ? Math.min(limit, rules.limit) : limit));
  } else if (cursorSeq < window.base) {
    skipped = true;
    start = Math.max(0, entries.length - limit);
  } else {
    start = window.after(cursorSeq);
  }
  if (!sampled) {
    const end = Math.min(entries.length, start + limit);
    const messages: string[] = [];
    for (let i = start; i < end; i++) messages.push((entries[i] as CachedMessage).json);
    // More than a page: continue from the last one returned, the next poll takes the rest.
    const last = end < entries.length ? (entries[end - 1] as CachedMessage).seq : newestSeq;
    return { messages, cursorSeq: last, skipped };
  }
  const oldest = now - rules.spanMs;
  let picked: CachedMessage[] = [];
  for (let i = start; i < entries.length; i++) {
    const m = entries[i] as CachedMessage;
    if (m.ts >= oldest && keptBySample(m.seq, rules.ratio)) picked.push(m);
  }
  if (picked.length < entries.length - start) skipped = true;
  const cap = Math.min(limit, rules.limit);
  if (picked.length > cap) {
    picked = thin(picked, cap);
    skipped = true;
  }
  return { messages: picked.map((m) => m.json), cursorSeq: newestSeq, skipped };
}

/**
 * Event-loop delay as the front's own pressure gauge: when it is high, clients are asked to
 * poll less often, which is the cheapest load shedding there is.
 */
export class Pressure {
  private readonly histogram = monitorEventLoopDelay({ resolution: 20 });
  private timer: NodeJS.Timeout | null = null;
  private high = false;

  constructor(private readonly thresholdMs = 100) {}

  start(): void {
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.high = this.histogram.percentile(99) / 1e6 > this.thresholdMs;
      this.histogram.reset();
    }, 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.histogram.disable();
  }

  underPressure(): boolean {
    return this.high;
  }
}
