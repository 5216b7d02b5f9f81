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
