/**
 * How soon a poller of a small room must come back so that it never falls behind retention.
 *
 * A room keeps its newest `retention` messages per type; a poller that waits retryAfterMs while
 * more than that arrive gets a skipped window and loses the rest. Big rooms accept that (their
 * polls are sampled on purpose); a small room taking hundreds of comments a second (a bot, a
 * raid, a room whose viewers all hold long connections) must not: each poll's answer tells this
 * front how fast the room's streams advance, and retryAfterMs shrinks so that a poller comes back
 * while at most a third of retention has arrived. (The processor also keeps a hot stream's last
 * 10 s, more than retention: the first interval, before any rate is known, is covered by that.)
 */
interface Pace {
  seq: number;
  at: number;
  /** Messages per ms, smoothed. */
  rate: number;
}

/** Rooms remembered at most; the least recently polled go first. */
const MAX_ROOMS = 20_000;
/** Shortest wait a poller is told, however hot the room; also the wait after a full page. */
export const MIN_RETRY_MS = 250;

export class PollPace {
  private readonly streams = new Map<string, Pace>();

  constructor(private readonly retention: number) {}

  /**
   * Notes the newest seq a poll saw for one of the room's streams and returns the longest wait
   * that keeps a poller within retention (or `retryAfterMs` when that is shorter already). A page
   * that came back full means the poller is behind: it is told to come back at once.
   */
  retryAfter(key: string, newestSeq: number, retryAfterMs: number, pageFull = false, now = Date.now()): number {
    const known = this.streams.get(key);
    let pace: Pace;
    if (known) {
      this.streams.delete(key);
      const elapsed = now - known.at;
      // Shorter intervals say little about the rate (one burst); they keep the old estimate.
      if (elapsed < 200) pace = known;
      else {
        const rate = Math.max(0, newestSeq - known.seq) / elapsed;
        pace = { seq: newestSeq, at: now, rate: rate > known.rate ? rate : known.rate * 0.5 + rate * 0.5 };
      }
    } else {
      pace = { seq: newestSeq, at: now, rate: 0 };
      if (this.streams.size >= MAX_ROOMS) this.streams.delete(this.streams.keys().next().value as string);
    }
    this.streams.set(key, pace);
    if (pageFull) return MIN_RETRY_MS;
    if (pace.rate <= 0) return retryAfterMs;
    return Math.min(retryAfterMs, Math.max(MIN_RETRY_MS, Math.floor(this.retention / 3 / pace.rate)));
  }
}
