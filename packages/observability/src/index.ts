import { pino, type DestinationStream, type Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export type { Logger } from 'pino';

/** A pino logger to stdout, or to `destination` (a test reading the lines). */
export function createLogger(name: string, level = process.env.LOG_LEVEL ?? 'info', destination?: DestinationStream): Logger {
  return destination ? pino({ name, level }, destination) : pino({ name, level });
}

/**
 * One registry per process. In standalone every role shares it, so metrics are defined
 * idempotently: the second role asking for a metric gets the one already registered.
 */
export const registry = new Registry();
collectDefaultMetrics({ register: registry });
// prom-client names these gauges `_total`, a suffix Prometheus keeps for counters (promtool check
// metrics refuses them); each equals sum() over its by-type twin (nodejs_active_handles{type}).
for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);

type Labels<T extends string> = { name: string; help: string; labelNames?: readonly T[] };

export function counter<T extends string = string>(spec: Labels<T>): Counter<T> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Counter<T>;
  return new Counter<T>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export function gauge<T extends string = string>(spec: Labels<T>): Gauge<T> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Gauge<T>;
  return new Gauge<T>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

export function histogram<T extends string = string>(spec: Labels<T> & { buckets?: number[] }): Histogram<T> {
  const existing = registry.getSingleMetric(spec.name);
  if (existing) return existing as Histogram<T>;
  return new Histogram<T>({ ...spec, labelNames: spec.labelNames ?? [], registers: [registry] });
}

/** Where /metrics gets its text: this process's registry, unless a cluster worker set its cluster's. */
let metricsSource: (() => Promise<string>) | null = null;

export async function metricsText(): Promise<{ contentType: string; body: string }> {
  return { contentType: registry.contentType, body: metricsSource ? await metricsSource() : await registry.metrics() };
}

/** One process's metrics in the form a cluster primary sums (prom-client's JSON). */
export type ProcessMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

/** This process's metrics, for its cluster primary. */
export function processMetrics(): Promise<ProcessMetrics> {
  return registry.getMetricsAsJSON();
}

/**
 * The metrics of a cluster's processes as one Prometheus text: each metric by its aggregator
 * (counters, gauges and histograms summed; the default metrics' own: version first, lag averaged).
 */
export async function sumMetrics(parts: readonly ProcessMetrics[]): Promise<string> {
  return AggregatorRegistry.aggregate([...parts]).metrics();
}

/** From now on this process's /metrics answers with what `source` gathers (a cluster worker: its whole cluster's). */
export function useMetricsSource(source: () => Promise<string>): void {
  metricsSource = source;
}

export interface StopOptions {
  /** How long the stop itself may take before the process exits anyway. */
  graceMs?: number;
  /**
   * SIGTERM only (a deploy): runs first, then the stop. SIGINT (development) skips it, and a
   * SIGINT while draining stops at once.
   */
  drain?: () => Promise<void>;
  /** How long the drain may take (its own window), on top of graceMs. */
  drainMs?: number;
}

/**
 * Stops the role cleanly on SIGINT/SIGTERM (finish the batch in hand, commit, close), and
 * exits anyway if that takes longer than `graceMs`; on SIGTERM a `drain` runs before the stop.
 */
export function stopOnSignals(logger: Logger, stop: () => Promise<void>, options: StopOptions = {}): void {
  const graceMs = options.graceMs ?? 10_000;
  let stopping = false;
  let draining = false;
  const stopNow = (): void => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => {
      logger.error('did not stop in time; exiting');
      process.exit(1);
    }, graceMs).unref();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    if (signal === 'SIGTERM' && options.drain && !draining) {
      draining = true;
      logger.info({ signal, drainMs: options.drainMs }, 'draining');
      setTimeout(() => {
        logger.error('did not drain in time; exiting');
        process.exit(1);
      }, (options.drainMs ?? 0) + graceMs).unref();
      options.drain().then(stopNow, (err: unknown) => {
        logger.error({ err }, 'error while draining');
        stopNow();
      });
      return;
    }
    logger.info({ signal }, 'stopping');
    stopNow();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}
export { watchEventLoop } from './loop-watchdog.js';
