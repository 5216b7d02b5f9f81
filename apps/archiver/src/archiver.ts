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
}

/**
 * The archiver role: its own consumer group on the message topic, so it sees every message
 * whatever the processor's retention trims. A batch becomes multi-row INSERT IGNOREs (a
 * redelivered batch changes nothing); the handler resolves only after MySQL took the rows, and
 * only then does the bus commit. MySQL away: the handler throws and the bus delivers again.
 */
export async function startArchiver(options: ArchiverOptions): Promise<Consumer> {
  const { archive, logger, batchSize } = options;
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
  };
  return options.bus.consume({
    topic: options.topic,
    groupId: options.groupId ?? 'archiver',
    handle,
    maxBatch: batchSize,
    // MySQL takes a few batches at once well; more partitions in flight only queue on the pool.
    concurrency: Math.min(4, options.bus.partitions),
    lingerMs: options.lingerMs,
  });
}
