/**
 * Waits for the viewers to drain: polls their summed delivery count every 250 ms until it reaches
 * `target`, stops moving for `stallMs`, or the clock passes `untilMs`. Returns the last count.
 */
export async function drainDeliveries(count: () => Promise<number>, target: number, options: { untilMs: number; stallMs: number }): Promise<number> {
  let got = 0;
  let last = -1;
  let still = Date.now();
  while (Date.now() < options.untilMs) {
    got = await count();
    if (got >= target) break;
    if (got !== last) {
      last = got;
      still = Date.now();
    } else if (Date.now() - still > options.stallMs) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  return got;
}

/** What a viewer worker (bench/fanout-worker.ts) answers to `report MAXSEQ`: its clients' totals. */
export interface WorkerReport {
  deliveries: number;
  duplicates: number;
  outOfRange: number;
  packets: number;
  lost: number;
  connected: number;
  /** [latency ms, count] pairs. */
  hist: [number, number][];
}
