import type { Config } from '@danmaku/config';
import type { Logger } from '@danmaku/observability';
import type { Bus } from './bus.js';
import { KafkaBus, kafkaSecurity } from './kafka.js';
import { MemoryBus } from './memory.js';

/**
 * Kafka when KAFKA_BROKERS is set; otherwise the in-memory bus, which only makes sense when
 * producers and consumers share the process (standalone), so split roles pass `requireKafka`.
 */
export async function openBus(config: Config, clientId: string, logger: Logger, requireKafka = false): Promise<Bus> {
  if (config.kafkaBrokers.length === 0) {
    if (requireKafka) throw new Error(`${clientId} runs as its own process and needs KAFKA_BROKERS; use standalone for the in-memory bus`);
    return new MemoryBus({ partitions: config.partitions, logger });
  }
  const bus = new KafkaBus({
    brokers: config.kafkaBrokers,
    clientId,
    partitions: config.partitions,
    topics: [config.topic],
    replication: config.kafkaReplication,
    minInsync: config.kafkaMinInsync,
    sessionTimeoutMs: config.kafkaSessionTimeoutMs,
    idempotent: config.kafkaIdempotent,
    lingerMs: config.kafkaLingerMs,
    commitEveryMs: config.kafkaCommitMs,
    logger,
    produceTimeoutMs: config.busTimeoutMs,
    ...kafkaSecurity(config),
  });
  await bus.connect();
  return bus;
}
