import { counter } from '@danmaku/observability';
import { execSpread, roomKeys, type Command, type Redis } from '@danmaku/store';

/** Total likes of a room; same hash tag as the room's other keys. */
export const likesKey = roomKeys.likes;

const likesAccepted = counter({ name: 'danmaku_likes_total', help: 'Likes accepted by this front (before aggregation)' });
const likeFlushes = counter<'result'>({ name: 'danmaku_likes_flushes_total', help: 'Flushes of aggregated likes to Redis', labelNames: ['result'] });

/**
 * Likes are counted, not messaged (one popular live can see billions of taps): taps add to a
 * per-room counter in memory and one INCRBY per room goes to Redis about once a second, however many taps came.
 */
export class LikeCounter {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Counts started flushes: a total read across one would miss the batch in flight. */
  private flushesStarted = 0;

  constructor(
    private readonly write: Redis,
    private readonly flushMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.flushMs);
    this.timer.unref();
  }

  /** Stops the timer and flushes what is pending, so a clean shutdown loses no tap. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  add(roomId: string, count: number): void {
    this.pending.set(roomId, (this.pending.get(roomId) ?? 0) + count);
    likesAccepted.inc(count);
  }

  /**
   * Flushed total plus what this front still holds. A read that overlaps a flush could see the
   * batch neither in Redis nor in `pending`, so it waits the flush out and reads again. It reads
   * the primary, where the flush just landed (a replica may lag behind it).
   */
  async total(roomId: string): Promise<number> {
    for (;;) {
      if (this.flushing) await this.flushing;
      const started = this.flushesStarted;
      const flushed = await this.write.get(likesKey(roomId));
      if (this.flushesStarted === started && !this.flushing) return Number(flushed ?? 0) + (this.pending.get(roomId) ?? 0);
    }
  }

  flush(): Promise<void> {
    this.flushing ??= (async () => {
      if (this.pending.size === 0) return;
      this.flushesStarted++;
      const batch = this.pending;
      this.pending = new Map();
      try {
        // One slot per room: one pipeline, or one per node on a cluster.
        const results = await execSpread(this.write, [...batch].map(([roomId, n]): Command => ['incrby', likesKey(roomId), n]));
        // Put back only what did not land: an INCRBY that succeeded must not be counted twice.
        let failed = results.length === 0;
        [...batch].forEach(([roomId, n], i) => {
          if (!results[i] || results[i]?.[0]) {
            failed = true;
            this.pending.set(roomId, (this.pending.get(roomId) ?? 0) + n);
          }
        });
        likeFlushes.inc({ result: failed ? 'error' : 'ok' });
      } catch {
        for (const [roomId, n] of batch) this.pending.set(roomId, (this.pending.get(roomId) ?? 0) + n);
        likeFlushes.inc({ result: 'error' });
      }
    })().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }
}
