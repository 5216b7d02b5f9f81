import { randomBytes } from 'node:crypto';
import { toArchiveRow, type Archive, type ArchiveRow } from '@danmaku/archive';
import type { Batch, Bus, Consumer } from '@danmaku/bus';
import { counter, histogram, type Logger } from '@danmaku/observability';

const poison = counter({ name: 'danmaku_archiver_invalid_total', help: 'Bus records that were not messages (logged, skipped)' });
const lag = histogram({
  name: 'danmaku_archiver_delay_seconds',
  help: 'Front receive (ts) to written in MySQL',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
});

export interface ArchiverOptions {
  bus: Bus;
  archive: Archive;
  topic: string;
  logger: Logger;
  /** Most records per batch (one multi-row INSERT per this many). */
  batchSize: number;
  /** Wait this long to fill a batch before inserting (bus lingerMs). */
  lingerMs?: number;
  groupId?: string;
  /**
   * Where this archiver's "archived up to" watermark is recorded (replay caches only segments
   * below it): the deployment and topic, e.g. `main/danmaku.messages`. Default: the topic.
   */
  progressScope?: string;
  /** How often the watermark is written (ms). */
  progressEveryMs?: number;
}

/** What a started archiver gives back: the bus consumer, and the watermark it reports. */
export interface ArchiverHandle extends Consumer {
  /** Every message stamped at or before this (ms) is in MySQL, as far as this archiver knows. */
  archivedThrough(): Promise<number>;
}

/**
 * The archiver role: its own consumer group on the message topic, so it sees every message
 * whatever the processor's retention trims. A batch becomes multi-row INSERT IGNOREs (a
 * redelivered batch changes nothing); the handler resolves only after MySQL took the rows, and
 * only then does the bus commit. MySQL away: the handler throws and the bus delivers again.
 */
export async function startArchiver(options: ArchiverOptions): Promise<ArchiverHandle> {
  const { archive, logger, batchSize } = options;
  /** Per partition: the newest stamp (ts) of a record committed to MySQL. */
  const through = new Map<number, number>();
  const handle = async (batch: Batch): Promise<void> => {
    const rows: ArchiveRow[] = [];
    let oldest = Number.POSITIVE_INFINITY;
    for (const record of batch.records) {
      const row = toArchiveRow(record.value);
      if (!row) {
        poison.inc();
        logger.error({ partition: record.partition, offset: record.offset, key: record.key }, 'skipping a record that is not a message');
        continue;
      }
      rows.push(row);
      oldest = Math.min(oldest, row.ts);
    }
    if (rows.length === 0) return;
    await archive.insert(rows, batchSize);
    lag.observe(Math.max(0, Date.now() - oldest) / 1000);
    // Partitions are consumed in order, so everything before this batch's newest record is in too
    // (stamps are only roughly ordered across fronts; the reader's settle window covers that).
    let newest = 0;
    for (const row of rows) newest = Math.max(newest, row.ts);
    through.set(batch.partition, Math.max(through.get(batch.partition) ?? 0, newest));
  };
  const consumer = await options.bus.consume({
    topic: options.topic,
    groupId: options.groupId ?? 'archiver',
    handle,
    maxBatch: batchSize,
    // MySQL takes a few batches at once well; more partitions in flight only queue on the pool.
    concurrency: Math.min(4, options.bus.partitions),
    lingerMs: options.lingerMs,
  });

  // Caught up (no lag): everything produced up to about now is stored, except what a fetch has
  // not brought yet: the linger, and with Kafka a second more (its lag is as of the last fetch;
  // the memory bus counts exactly). Behind: the slowest partition's mark.
  const margin = (options.lingerMs ?? 200) + (options.bus.kind === 'kafka' ? 1000 : 0);
  const archivedThrough = async (): Promise<number> => {
    const behind = await consumer.lag();
    if (behind === 0) return Date.now() - margin;
    return through.size > 0 ? Math.min(...through.values()) : 0;
  };
  const scope = options.progressScope ?? options.topic;
  const id = `a-${randomBytes(5).toString('hex')}`;
  let reporting: Promise<void> | null = null;
  const timer = setInterval(() => {
    if (reporting) return;
    reporting = archivedThrough()
      .then((mark) => archive.recordProgress(scope, id, mark))
      .catch((err: unknown) => logger.debug({ err }, 'archive progress not recorded'))
      .finally(() => {
        reporting = null;
      });
  }, options.progressEveryMs ?? 1000);
  timer.unref();
  return {
    lag: () => consumer.lag(),
    archivedThrough,
    async stop() {
      clearInterval(timer);
      await consumer.stop();
      await reporting;
      await archive.forgetProgress(scope, id).catch(() => undefined);
    },
  };
}
