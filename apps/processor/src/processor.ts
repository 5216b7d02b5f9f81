import type { Batch, Bus, Consumer } from '@danmaku/bus';
import { parseStreamKey, type MessageType, type UnsequencedMessage } from '@danmaku/model';
import { counter, histogram, type Logger } from '@danmaku/observability';
import type { AppendEntry, RedisStore } from '@danmaku/store';

/** Pub/sub channel on which the processor says "(room, type) advanced to seq N". */
export const ADVANCED_CHANNEL = 'dm:advanced';

export interface RoomAdvanced {
  roomId: string;
  type: MessageType;
  seq: number;
}

const stored = counter<'type'>({ name: 'danmaku_processor_stored_total', help: 'Messages numbered and stored', labelNames: ['type'] });
const duplicates = counter({ name: 'danmaku_processor_duplicates_total', help: 'Redelivered messages dropped by id' });
const poison = counter({ name: 'danmaku_processor_invalid_total', help: 'Bus records that were not messages (logged, skipped)' });
const delay = histogram({
  name: 'danmaku_processor_delay_seconds',
  help: 'Front receive (ts) to stored in Redis',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
});

export interface ProcessorOptions {
  bus: Bus;
  store: RedisStore;
  topic: string;
  logger: Logger;
  /** Most messages per Lua call. */
  batchSize: number;
  /** Announces each advanced stream (the pusher listens); failures only delay pushes. */
  announce?: (events: RoomAdvanced[]) => Promise<void>;
  groupId?: string;
}

interface Stream {
  roomId: string;
  type: MessageType;
  entries: AppendEntry[];
  oldestTs: number;
}

/** Groups a partition batch by (room, type), keeping the order within each stream. */
function groupByStream(batch: Batch, logger: Logger): Map<string, Stream> {
  const streams = new Map<string, Stream>();
  for (const record of batch.records) {
    const target = parseStreamKey(record.key);
    let message: UnsequencedMessage | null = null;
    try {
      message = JSON.parse(record.value) as UnsequencedMessage;
    } catch {
      message = null;
    }
    if (!target || !message || typeof message.id !== 'string' || message.roomId !== target.roomId) {
      // A record that can never be stored must not block its partition forever.
      poison.inc();
      logger.error({ partition: record.partition, offset: record.offset, key: record.key }, 'skipping a record that is not a message');
      continue;
    }
    let stream = streams.get(record.key);
    if (!stream) {
      stream = { ...target, entries: [], oldestTs: message.ts };
      streams.set(record.key, stream);
    }
    stream.entries.push({ id: message.id, json: record.value });
  }
  return streams;
}

/**
 * The processor role: consumes the message topic, numbers and stores each (room, type) with
 * one atomic script call per batch, announces, and only then lets the bus commit.
 */
export async function startProcessor(options: ProcessorOptions): Promise<Consumer> {
  const { store, logger, batchSize } = options;

  const handle = async (batch: Batch): Promise<void> => {
    const streams = groupByStream(batch, logger);
    const events: RoomAdvanced[] = [];
    // Streams are independent (their own keys and seqs), so they are written concurrently;
    // within one stream the chunks go strictly in order.
    await Promise.all(
      [...streams.values()].map(async (stream) => {
        let newest = 0;
        for (let i = 0; i < stream.entries.length; i += batchSize) {
          const chunk = stream.entries.slice(i, i + batchSize);
          const result = await store.append(stream.roomId, stream.type, chunk);
          const added = result.seqs.filter((s) => s !== null).length;
          stored.inc({ type: stream.type }, added);
          if (added < chunk.length) duplicates.inc(chunk.length - added);
          newest = result.newestSeq;
        }
        delay.observe((Date.now() - stream.oldestTs) / 1000);
        events.push({ roomId: stream.roomId, type: stream.type, seq: newest });
      }),
    );
    if (options.announce && events.length > 0) {
      await options.announce(events).catch((err: unknown) => logger.warn({ err }, 'announce failed; connectors will catch up on their timer'));
    }
  };

  return options.bus.consume({ topic: options.topic, groupId: options.groupId ?? 'processor', handle, maxBatch: batchSize, concurrency: options.bus.partitions });
}

/** Announces over Redis pub/sub: one PUBLISH per batch, whatever the number of streams. */
export function redisAnnouncer(redis: { publish(channel: string, message: string): Promise<number> }) {
  return async (events: RoomAdvanced[]): Promise<void> => {
    await redis.publish(ADVANCED_CHANNEL, JSON.stringify(events));
  };
}
