/**
 * How many messages a stream keeps in Redis: the configured retention, or more while the stream is
 * hot. A poller comes back after retryAfterMs (a few hundred ms to seconds); a stream taking
 * hundreds of messages a second would push a poller's cursor past a fixed count in that time, and
 * the poller would miss what was trimmed. So a stream keeps at least its last WINDOW_MS of
 * messages, up to MAX_FACTOR times the configured retention; a quiet stream shrinks back to it.
 */
interface Pace {
  seq: number;
  at: number;
  /** Messages per ms, smoothed. */
  rate: number;
}

const WINDOW_MS = 10_000;
const MAX_FACTOR = 10;
/** Streams remembered at most; the least recently written go first. */
const MAX_STREAMS = 50_000;

export class StreamRetention {
  private readonly streams = new Map<string, Pace>();

  constructor(private readonly base: number) {}

  /** Notes the stream's newest seq after a write; returns the retention for its next write. */
  after(key: string, newestSeq: number, now = Date.now()): number {
    const known = this.streams.get(key);
    let pace: Pace = known ?? { seq: newestSeq, at: now, rate: 0 };
    if (known) {
      this.streams.delete(key);
      const elapsed = now - known.at;
      // Writes closer together than this say little about the rate; the estimate stays.
      if (elapsed >= 250) {
        const rate = Math.max(0, newestSeq - known.seq) / elapsed;
        pace = { seq: newestSeq, at: now, rate: rate > known.rate ? rate : known.rate * 0.7 + rate * 0.3 };
      }
    } else if (this.streams.size >= MAX_STREAMS) {
      this.streams.delete(this.streams.keys().next().value as string);
    }
    this.streams.set(key, pace);
    return this.retentionOf(pace);
  }

  /** The retention for a stream's next write (the configured one for a stream not seen yet). */
  of(key: string): number {
    const pace = this.streams.get(key);
    return pace ? this.retentionOf(pace) : this.base;
  }

  private retentionOf(pace: Pace): number {
    return Math.min(this.base * MAX_FACTOR, Math.max(this.base, Math.ceil(pace.rate * WINDOW_MS)));
  }
}
