/**
 * Latency histograms that merge across processes: 1 ms buckets below one second, then 1 % steps up
 * to ten minutes, so a p99 of 40 ms and one of 90 s are both read to within a percent.
 */
const LINEAR_MS = 1000;
const STEP = Math.log(1.01);
const MAX_MS = 600_000;
export const BUCKETS = LINEAR_MS + Math.ceil(Math.log(MAX_MS / LINEAR_MS) / STEP) + 1;

export function bucketOf(ms: number): number {
  if (!(ms > 0)) return 0;
  if (ms < LINEAR_MS) return Math.floor(ms);
  return Math.min(BUCKETS - 1, LINEAR_MS + Math.floor(Math.log(ms / LINEAR_MS) / STEP));
}

/** The upper bound of a bucket in ms (what a percentile read from it reports). */
export function msOf(bucket: number): number {
  if (bucket < LINEAR_MS) return bucket;
  return Math.round(LINEAR_MS * Math.exp((bucket - LINEAR_MS + 1) * STEP));
}

export class Histogram {
  readonly counts = new Uint32Array(BUCKETS);
  total = 0;

  add(ms: number): void {
    const b = bucketOf(ms);
    this.counts[b] = (this.counts[b] as number) + 1;
    this.total++;
  }

  /** [bucket, count] pairs of the non-empty buckets: what crosses a process boundary. */
  sparse(): [number, number][] {
    const out: [number, number][] = [];
    this.counts.forEach((n, b) => {
      if (n > 0) out.push([b, n]);
    });
    return out;
  }

  merge(pairs: readonly (readonly [number, number])[]): void {
    for (const [b, n] of pairs) {
      this.counts[b] = (this.counts[b] ?? 0) + n;
      this.total += n;
    }
  }

  /** The latency `q` (0..1) of the deliveries fall under, in ms; null with nothing recorded. */
  quantile(q: number): number | null {
    if (this.total === 0) return null;
    const rank = Math.max(1, Math.ceil(this.total * q));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b] as number;
      if (seen >= rank) return msOf(b);
    }
    return msOf(BUCKETS - 1);
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
  }
}

/**
 * The seqs one viewer received, as bits from a base: a viewer of a room sees that room's seqs in
 * a dense run, so a bitset costs one bit per message of the room instead of a Set entry.
 */
export class SeqSet {
  private bits = new Uint8Array(0);
  private base = -1;

  /** Records `seq`; false when it was already there (a duplicate). */
  add(seq: number): boolean {
    if (this.base < 0) this.base = seq - (seq % 8);
    if (seq < this.base) this.rebase(seq - (seq % 8));
    const offset = seq - this.base;
    const byte = offset >> 3;
    if (byte >= this.bits.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.bits.length * 2, 64));
      grown.set(this.bits);
      this.bits = grown;
    }
    const mask = 1 << (offset & 7);
    const had = ((this.bits[byte] as number) & mask) !== 0;
    this.bits[byte] = (this.bits[byte] as number) | mask;
    return !had;
  }

  has(seq: number): boolean {
    if (this.base < 0 || seq < this.base) return false;
    const offset = seq - this.base;
    const byte = offset >> 3;
    return byte < this.bits.length && ((this.bits[byte] as number) & (1 << (offset & 7))) !== 0;
  }

  private rebase(base: number): void {
    const shift = (this.base - base) >> 3;
    const moved = new Uint8Array(this.bits.length + shift);
    moved.set(this.bits, shift);
    this.bits = moved;
    this.base = base;
  }
}
