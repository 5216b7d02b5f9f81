import { Kafka, logLevel, Partitioners, type Producer, type Consumer as KafkaConsumer, type LogEntry } from 'kafkajs';
import type { Logger } from '@danmaku/observability';
import { BusUnavailableError, type Bus, type ConsumeOptions, type Consumer, type ProduceRecord } from './bus.js';

export interface KafkaBusOptions {
  brokers: string[];
  clientId: string;
  partitions: number;
  logger?: Logger;
  /** A produce not acknowledged by then fails with BusUnavailableError (the front answers 503). */
  produceTimeoutMs?: number;
  /**
   * Group session timeout. Rejoining a group after a member dies takes about this long, so it
   * is kept short; the dev broker (librdkafka's mock cluster) accepts it.
   */
  sessionTimeoutMs?: number;
}

function kafkaLogger(logger: Logger | undefined) {
  return () =>
    ({ level, log }: LogEntry): void => {
      if (!logger) return;
      const { message, ...extra } = log;
      if (level === logLevel.ERROR) logger.error(extra, `kafka: ${message}`);
      else if (level === logLevel.WARN) logger.warn(extra, `kafka: ${message}`);
      else logger.debug(extra, `kafka: ${message}`);
    };
}

/** The bus of the scaled-out system: kafkajs against Kafka (or the dev broker). */
export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly partitions: number;
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  private producerReady: Promise<Producer> | null = null;
  private readonly consumers = new Set<KafkaMember>();
  /** Set when a produce fails; cleared by the next success. Feeds readiness. */
  private lastProduceError = 0;

  constructor(private readonly options: KafkaBusOptions) {
    this.partitions = options.partitions;
    this.kafka = new Kafka({
      clientId: options.clientId,
      brokers: options.brokers,
      logLevel: logLevel.WARN,
      logCreator: kafkaLogger(options.logger),
      connectionTimeout: 2000,
      requestTimeout: 5000,
      retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
    });
  }

  private getProducer(): Promise<Producer> {
    if (!this.producerReady) {
      const producer = this.kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 3 },
      });
      this.producerReady = producer.connect().then(
        () => {
          this.producer = producer;
          return producer;
        },
        (err: unknown) => {
          this.producerReady = null;
          throw err;
        },
      );
    }
    return this.producerReady;
  }

  /** Connects the producer now, so the first send does not pay for it. */
  async connect(): Promise<void> {
    await this.getProducer();
  }

  healthy(): boolean {
    return this.lastProduceError === 0;
  }

  async produce(topic: string, records: readonly ProduceRecord[]): Promise<void> {
    const timeoutMs = this.options.produceTimeoutMs ?? 2000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BusUnavailableError(`Kafka did not acknowledge within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([
        (async () => {
          const producer = await this.getProducer();
          await producer.send({
            topic,
            acks: -1,
            messages: records.map((r) => ({ key: r.key, value: r.value, partition: r.partition })),
          });
        })(),
        timeout,
      ]);
      this.lastProduceError = 0;
    } catch (err) {
      this.lastProduceError = Date.now();
      if (err instanceof BusUnavailableError) throw err;
      throw new BusUnavailableError(`Kafka refused the write: ${(err as Error).message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    const sessionTimeout = this.options.sessionTimeoutMs ?? 6000;
    const create = (): KafkaConsumer =>
      this.kafka.consumer({
        groupId: options.groupId,
        sessionTimeout,
        heartbeatInterval: Math.max(500, Math.floor(sessionTimeout / 6)),
        rebalanceTimeout: sessionTimeout * 2,
        // A fetch waits for this much data or lingerMs, whichever comes first: batching at low rates.
        minBytes: options.lingerMs ? 64 * 1024 : 1,
        maxWaitTimeInMs: options.lingerMs ?? 50,
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: Number.MAX_SAFE_INTEGER },
      });
    const member = new KafkaMember(create, options, this.options.logger, () => this.consumers.delete(member));
    this.consumers.add(member);
    await member.start();
    return member;
  }

  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.stop()));
    const producer = this.producer;
    this.producer = null;
    this.producerReady = null;
    await producer?.disconnect();
  }
}

/**
 * One group member. kafkajs restarts a consumer by itself only after retriable errors; a
 * non-retriable one leaves it crashed for good. A broker that stalls longer than the session
 * timeout does exactly that: the group forgot the member, so the offset commit after the next
 * batch fails with UNKNOWN_MEMBER_ID (non-retriable in kafkajs), and the role would sit alive but
 * consume nothing forever. So the member replaces its crashed consumer with a new one that joins
 * the group again; the uncommitted batch is delivered again and consumers dedup by message id.
 */
class KafkaMember implements Consumer {
  private readonly lagByPartition = new Map<number, number>();
  private stopped = false;
  private consumer: KafkaConsumer | null = null;
  private restarting: Promise<void> | null = null;
  /** Consecutive failed restarts: spaces the next attempt out. */
  private restartFailures = 0;

  constructor(
    private readonly create: () => KafkaConsumer,
    private readonly options: ConsumeOptions,
    private readonly logger: Logger | undefined,
    private readonly onStop: () => void,
  ) {}

  async start(): Promise<void> {
    const { options } = this;
    const consumer = this.create();
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.stopped || this.consumer !== consumer) return;
      this.logger?.warn({ err: payload.error, group: options.groupId }, 'kafka consumer crashed; joining the group again');
      this.restart(consumer);
    });
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.concurrency ?? 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
          if (batch.messages.length === 0) return;
          const records = batch.messages.map((m) => ({
            key: m.key?.toString('utf8') ?? '',
            value: m.value?.toString('utf8') ?? '',
            partition: batch.partition,
            offset: m.offset,
          }));
          let backoff = 100;
          // Keep retrying this batch in place: skipping it would lose messages, and handing the
          // error to kafkajs would restart the whole consumer.
          for (;;) {
            if (!isRunning() || isStale()) return;
            try {
              await options.handle({ topic: batch.topic, partition: batch.partition, records });
              break;
            } catch (err) {
              this.logger?.warn({ err, partition: batch.partition, group: options.groupId }, 'batch failed; retrying');
              await new Promise((resolve) => setTimeout(resolve, backoff));
              backoff = Math.min(backoff * 2, 2000);
              await heartbeat();
            }
          }
          const last = batch.lastOffset();
          resolveOffset(last);
          // Invariant 3: the commit follows the successful write, never precedes it.
          await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }]);
          this.restartFailures = 0;
          this.lagByPartition.set(batch.partition, Math.max(0, Number(batch.highWatermark) - Number(last) - 1));
          await heartbeat();
        },
      });
    } catch (err) {
      // A consumer that never got running is thrown away, so a retry starts clean.
      if (this.consumer === consumer) this.consumer = null;
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  /** Replaces a crashed consumer, retrying with back-off until it runs again or the member stops. */
  private restart(crashed: KafkaConsumer): void {
    if (this.restarting) return;
    this.restarting = (async () => {
      await crashed.disconnect().catch(() => undefined);
      this.lagByPartition.clear();
      while (!this.stopped) {
        const delay = Math.min(200 * 2 ** this.restartFailures, 5000);
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (this.stopped) break;
        try {
          await this.start();
          this.logger?.info({ group: this.options.groupId }, 'kafka consumer running again');
          break;
        } catch (err) {
          this.restartFailures++;
          this.logger?.warn({ err, group: this.options.groupId, attempt: this.restartFailures }, 'kafka consumer restart failed; retrying');
        }
      }
    })().finally(() => {
      this.restarting = null;
    });
  }

  async lag(): Promise<number> {
    let sum = 0;
    for (const lag of this.lagByPartition.values()) sum += lag;
    return sum;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A restart may be retrying against a broker that is still away: do not wait on it for long.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.restarting, new Promise((resolve) => (timer = setTimeout(resolve, 5000)))]);
    clearTimeout(timer);
    await this.consumer?.disconnect().catch(() => undefined);
    this.onStop();
  }
}
