/** Connection performance, reported to `POST /v1/client-metrics`: the clients' side of end-to-end monitoring. */
import type { ClientMetricKind, Message } from '@danmaku/protocol';
import type { Mode } from './options.js';

export type MetricKind = ClientMetricKind;

interface Sample {
  kind: MetricKind;
  mode: Mode;
  ms?: number;
}

export interface MetricsOptions {
  baseUrl: string;
  fetch: typeof fetch;
  /** How often samples are sent (0: never, and nothing is collected). */
  intervalMs: number;
  /** One delivered message in this many has its latency (now - ts) sampled. */
  sampleEvery: number;
}

/** The most samples one report carries (the endpoint's limit). */
const BATCH = 100;
/** Longer than this is not a latency but a clock problem; it is capped, not dropped. */
const MAX_MS = 600_000;
const SDK = 'danmaku-js/0.1';

export class Metrics {
  private samples: Sample[] = [];
  private deliveredCount = 0;
  private timer: ReturnType<typeof setInterval> | null = null;

  constructor(private readonly options: MetricsOptions) {}

  start(): void {
    if (this.options.intervalMs > 0 && !this.timer) this.timer = setInterval(() => void this.flush(), this.options.intervalMs);
  }

  /** Stops the timer and sends what is left. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  sample(kind: MetricKind, mode: Mode, ms?: number): void {
    if (this.options.intervalMs <= 0) return;
    this.samples.push(ms === undefined ? { kind, mode } : { kind, mode, ms: Math.min(Math.round(ms), MAX_MS) });
    if (this.samples.length >= BATCH) void this.flush();
  }

  /** Counts delivered messages and samples the delivery latency of one in `sampleEvery`. */
  delivered(messages: readonly Message[], mode: Mode, now = Date.now()): void {
    for (const m of messages) {
      if (++this.deliveredCount % this.options.sampleEvery === 0) this.sample('delivery', mode, Math.max(0, now - m.ts));
    }
  }

  async flush(): Promise<void> {
    if (this.samples.length === 0) return;
    const samples = this.samples.splice(0, BATCH);
    try {
      await this.options.fetch(`${this.options.baseUrl}/v1/client-metrics`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ sdk: SDK, samples }),
      });
    } catch {
      // Metrics are best effort; never let them hurt the viewer.
    }
  }
}
