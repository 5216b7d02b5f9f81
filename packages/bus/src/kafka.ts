import { readFileSync } from 'node:fs';
import { Kafka, logLevel, Partitioners, type Admin, type Producer, type Consumer as KafkaConsumer, type EachBatchPayload, type LogEntry, type RecordMetadata, type SASLOptions } from 'kafkajs';
import type { Config } from '@danmaku/config';
import type { Logger } from '@danmaku/observability';
import { BusUnavailableError, type Bus, type ConsumeOptions, type Consumer, type ProduceRecord } from './bus.js';

export interface KafkaSecurity {
  /** TLS to the brokers; `ca` adds PEM CAs to the system's. */
  ssl?: boolean | { ca: string[] };
  sasl?: { mechanism: 'plain' | 'scram-sha-256' | 'scram-sha-512'; username: string; password: string };
}

export interface KafkaBusOptions extends KafkaSecurity {
  brokers: string[];
  clientId: string;
  /** Partitions of every topic the bus creates (and the least an existing topic must have). */
  partitions: number;
  /** Topics created (when missing) before the bus is used: the message topic. */
  topics?: string[];
  /** Replication factor of created topics; 0 or unset = 3, or the number of brokers when fewer. */
  replication?: number;
  /** min.insync.replicas of created topics; 0 or unset = 2 when replicated three times or more, else 1. */
  minInsync?: number;
  logger?: Logger;
  /** A produce not acknowledged by then fails with BusUnavailableError (the front answers 503). */
  produceTimeoutMs?: number;
  /** Group session timeout: how long a dead member keeps its partitions before the group rebalances. */
  sessionTimeoutMs?: number;
  /**
   * kafkajs's idempotent producer. Off by default, for what it did on Kafka 4.4 under faults: it
   * rolls a failed request's sequence numbers back although the request may have been written,
   * so the next request to that partition can be taken for a duplicate and dropped while
   * acknowledged (one acknowledged comment lost when a partition leader was killed; after any
   * failed request the producer is therefore replaced), and after every broker restarted at once
   * its InitProducerId was answered COORDINATOR_LOAD_IN_PROGRESS for minutes, so no write went
   * through while a plain producer's did. The processor drops duplicates by message id either way.
   */
  idempotent?: boolean;
  /**
   * How long a produce waits for company when no request is in flight (Kafka's own producer
   * lingers 5 ms by default since 4.0). 0 = send at once. A request in flight already gathers
   * what arrives meanwhile, so this only matters when sends come one at a time.
   */
  lingerMs?: number;
  /**
   * A lingering request goes at once when this many sends wait (Kafka's batch.size, counted in
   * sends): clients that each wait for their answer before sending again arrive together after
   * every request, and would otherwise pay the linger on every round. Default 16.
   */
  lingerFullSends?: number;
  /**
   * A consumer commits a partition's offset at most this often: a batch handled sooner after the
   * last commit leaves its offset owed, and one trailing commit takes every owed offset when the
   * interval is up (a stop or a drain commits what is owed before leaving the group). At low rates
   * each commit is a request for the broker and a round trip for the role, for every batch; a
   * crash redelivers at most this much more, dropped by message id as every redelivery is.
   * 0 or unset = a commit after every batch.
   */
  commitEveryMs?: number;
}

/** The security part of the options from the settings (the CA as a PEM file's path). */
export function kafkaSecurity(config: Pick<Config, 'kafkaSsl' | 'kafkaSslCa' | 'kafkaSaslMechanism' | 'kafkaSaslUsername' | 'kafkaSaslPassword'>): KafkaSecurity {
  const { kafkaSsl, kafkaSslCa, kafkaSaslMechanism } = config;
  return {
    ...(kafkaSsl || kafkaSslCa ? { ssl: kafkaSslCa ? { ca: [readFileSync(kafkaSslCa, 'utf8')] } : true } : {}),
    ...(kafkaSaslMechanism ? { sasl: { mechanism: kafkaSaslMechanism, username: config.kafkaSaslUsername, password: config.kafkaSaslPassword } } : {}),
  };
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

/** A produce() waiting for its records to be written. */
interface Pending {
  topic: string;
  records: readonly ProduceRecord[];
  resolve: () => void;
  reject: (err: Error) => void;
  settled: boolean;
  timer: NodeJS.Timeout;
}

/** A commit kafkajs has not got acknowledged by then is given up, and the consumer replaced. */
const COMMIT_TIMEOUT_MS = 5000;

/** Heartbeats at least this often: a member that left is replaced within about this long. */
const HEARTBEAT_MAX_MS = 500;

/**
 * A member whose assigned partitions lag with no batch in hand and no commit for this long is
 * taken for stuck and replaced. kafkajs can stop fetching a partition after a broker restart
 * without crashing (its issue #659: no error, no event, the group still thinks the member is
 * alive): nothing else would ever move the partition again.
 */
const STALL_MS = 30_000;

/** How often a member compares its group's committed offsets with the partitions' ends. */
const WATCH_MS = 5_000;

/** A replaced consumer gets this long to leave the group before it is left behind. */
const DISCONNECT_MS = 5_000;

/** A fresh consumer gets this long to join the group before it is replaced again. */
const START_MS = 30_000;

/** `promise`, or an error naming `what` once `ms` passed. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Sends of one request's records, the first included, before the records kafkajs left out are given up (503). */
const SEND_ATTEMPTS = 3;

/**
 * The records of `sent` whose partition `acked` does not name with success. kafkajs 2.2.4 retries
 * a failed produce only on the brokers that have not answered yet: a partition whose leader moved
 * meanwhile to a broker that had already answered (a rolling restart does exactly that) is never
 * sent, yet the call resolves. Its records were not written; they are what this returns.
 */
export function unacknowledged<M extends { partition: number }>(sent: readonly { topic: string; messages: M[] }[], acked: readonly RecordMetadata[]): { topic: string; messages: M[] }[] {
  const written = new Set(acked.filter((r) => r.errorCode === 0).map((r) => `${r.topicName}\0${r.partition}`));
  return sent
    .map(({ topic, messages }) => ({ topic, messages: messages.filter((m) => !written.has(`${topic}\0${m.partition}`)) }))
    .filter((t) => t.messages.length > 0);
}

/** One look at a member's partitions: where the group's commit stands and where the log ends. */
export interface PartitionMark {
  partition: number;
  committed: bigint;
  end: bigint;
}

/**
 * The stall clock of one member: `observe` takes each look at its assigned partitions and answers
 * how long the longest-lagging one has gone without its commit moving (0 when every partition is
 * caught up or moved since the last look). A partition that stops lagging starts its clock again.
 */
export class StallClock {
  private readonly since = new Map<number, { committed: bigint; at: number }>();

  observe(marks: readonly PartitionMark[], now: number): number {
    let longest = 0;
    const seen = new Set<number>();
    for (const { partition, committed, end } of marks) {
      seen.add(partition);
      const last = this.since.get(partition);
      if (committed >= end) {
        this.since.delete(partition);
      } else if (!last || last.committed !== committed) {
        this.since.set(partition, { committed, at: now });
      } else {
        longest = Math.max(longest, now - last.at);
      }
    }
    for (const partition of this.since.keys()) if (!seen.has(partition)) this.since.delete(partition);
    return longest;
  }

  reset(): void {
    this.since.clear();
  }
}

/** How often a failing bus checks whether Kafka is back. */
const PROBE_MS = 500;

/** Records in one produce request at most; a busier moment sends several requests in a row. */
const MAX_RECORDS_PER_REQUEST = 2000;

/**
 * The bus of the scaled-out system: kafkajs against Apache Kafka.
 *
 * Produces are coalesced: one request is in flight at a time and everything that arrives
 * meanwhile goes in the next one. kafkajs has no linger of its own, so one request per send
 * would cost a round trip and a broker request each; this way the batch grows with the load. A
 * send that finds nothing in flight waits `lingerMs` for others (at 200 sends/s, 20 ms puts about
 * four sends in a request where 5 ms put one or two: the broker's cost is per request). One
 * request in flight is also what the idempotent producer needs to keep its sequence numbers in
 * order.
 */
export class KafkaBus implements Bus {
  readonly kind = 'kafka' as const;
  readonly partitions: number;
  private readonly kafka: Kafka;
  private producer: Producer | null = null;
  private producerReady: Promise<Producer> | null = null;
  private readonly consumers = new Set<KafkaMember>();
  private readonly topicsReady = new Map<string, Promise<void>>();
  private queue: Pending[] = [];
  private sending = false;
  private lingering: NodeJS.Timeout | null = null;
  private probing = false;
  private closed = false;
  /** Set when a write failed or timed out; cleared by the next success. Feeds readiness and fast refusals. */
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
      ...(options.ssl ? { ssl: options.ssl } : {}),
      ...(options.sasl ? { sasl: options.sasl as SASLOptions } : {}),
    });
  }

  private getProducer(): Promise<Producer> {
    if (!this.producerReady) {
      const producer = this.kafka.producer({
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        // One request in flight keeps a partition's records in order across retries. kafkajs's
        // idempotent producer is off by default (see KafkaBusOptions.idempotent): a retried request
        // may leave a duplicate in the log, which the processor drops by message id.
        idempotent: this.options.idempotent ?? false,
        maxInFlightRequests: 1,
        retry: { initialRetryTime: 100, maxRetryTime: 1000, retries: 5 },
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

  /**
   * Creates a topic the project uses when it is missing, through the admin API, with the
   * configured partitions, replication and min.insync.replicas. An existing topic with fewer
   * partitions than configured is an error: fronts would write to partitions it does not have.
   */
  ensureTopic(topic: string): Promise<void> {
    let ready = this.topicsReady.get(topic);
    if (!ready) {
      ready = this.createTopic(topic).catch((err: unknown) => {
        this.topicsReady.delete(topic);
        throw err;
      });
      this.topicsReady.set(topic, ready);
    }
    return ready;
  }

  private async createTopic(topic: string): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    try {
      const existing = await admin.listTopics();
      if (!existing.includes(topic)) {
        const { brokers } = await admin.describeCluster();
        const replication = this.options.replication || Math.min(3, brokers.length);
        const minInsync = this.options.minInsync || (replication >= 3 ? 2 : 1);
        await admin.createTopics({
          // Waited for below: kafkajs's own wait gives up when a broker does not know the topic yet.
          waitForLeaders: false,
          topics: [{ topic, numPartitions: this.partitions, replicationFactor: replication, configEntries: [{ name: 'min.insync.replicas', value: String(minInsync) }] }],
        });
        this.options.logger?.info({ topic, partitions: this.partitions, replication, minInsync }, 'kafka topic created');
      }
      const partitions = await leadersKnown(admin, topic);
      if (partitions < this.partitions) {
        throw new Error(`Kafka topic ${topic} has ${partitions} partitions but DANMAKU_PARTITIONS is ${this.partitions}; add partitions to the topic or lower the setting`);
      }
    } finally {
      await admin.disconnect();
    }
  }

  /** Creates the configured topics and connects the producer now, so the first send pays for neither. */
  async connect(): Promise<void> {
    await Promise.all((this.options.topics ?? []).map((t) => this.ensureTopic(t)));
    await this.getProducer();
  }

  healthy(): boolean {
    return this.lastProduceError === 0;
  }

  produce(topic: string, records: readonly ProduceRecord[]): Promise<void> {
    if (this.closed) return Promise.reject(new BusUnavailableError('the bus is closed'));
    // While Kafka is failing every send is refused at once (a fast 503, not a queue of callers
    // each waiting for the deadline), and a probe in the background finds when it is back.
    if (this.lastProduceError !== 0) {
      this.startProbe();
      return Promise.reject(new BusUnavailableError(`Kafka is unavailable (a write failed ${Date.now() - this.lastProduceError} ms ago)`));
    }
    const timeoutMs = this.options.produceTimeoutMs ?? 2000;
    return new Promise<void>((resolve, reject) => {
      const pending: Pending = {
        topic,
        records,
        resolve,
        reject,
        settled: false,
        timer: setTimeout(() => {
          this.lastProduceError = Date.now();
          settle(pending, new BusUnavailableError(`Kafka did not acknowledge within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.queue.push(pending);
      const lingerMs = this.options.lingerMs ?? 0;
      if (this.lingering && this.queue.length >= (this.options.lingerFullSends ?? 16)) {
        clearTimeout(this.lingering);
        this.lingering = null;
      } else if (lingerMs > 0 && !this.sending) {
        this.lingering ??= setTimeout(() => {
          this.lingering = null;
          this.pump();
        }, lingerMs);
        return;
      }
      this.pump();
    });
  }

  private pump(): void {
    if (this.sending || this.lingering || this.queue.length === 0) return;
    const batch: Pending[] = [];
    let count = 0;
    while (this.queue.length > 0 && count < MAX_RECORDS_PER_REQUEST) {
      const next = this.queue.shift() as Pending;
      // A caller already told 503 retries with the same id; its records are not sent.
      if (next.settled) continue;
      batch.push(next);
      count += next.records.length;
    }
    if (batch.length === 0) return;
    this.sending = true;
    void this.send(batch).finally(() => {
      this.sending = false;
      this.pump();
    });
  }

  private async send(batch: Pending[]): Promise<void> {
    try {
      const byTopic = new Map<string, { key: string; value: string; partition: number }[]>();
      for (const p of batch) {
        await this.ensureTopic(p.topic);
        let messages = byTopic.get(p.topic);
        if (!messages) byTopic.set(p.topic, (messages = []));
        for (const r of p.records) messages.push({ key: r.key, value: r.value, partition: r.partition });
      }
      const producer = await this.getProducer();
      let topicMessages = [...byTopic].map(([topic, messages]) => ({ topic, messages }));
      for (let attempt = 1; ; attempt++) {
        const acked = await producer.sendBatch({ acks: -1, topicMessages });
        topicMessages = unacknowledged(topicMessages, acked);
        if (topicMessages.length === 0) break;
        const records = topicMessages.reduce((n, t) => n + t.messages.length, 0);
        if (attempt >= SEND_ATTEMPTS) throw new Error(`Kafka acknowledged the request but not ${records} of its records`);
        this.options.logger?.warn({ records, partitions: topicMessages.map((t) => `${t.topic}:${[...new Set(t.messages.map((m) => m.partition))].join(',')}`) }, 'kafka client answered without writing some partitions; sending them again');
      }
      this.lastProduceError = 0;
      for (const p of batch) settle(p);
    } catch (err) {
      this.lastProduceError = Date.now();
      const error = err instanceof BusUnavailableError ? err : new BusUnavailableError(`Kafka refused the write: ${(err as Error).message}`);
      for (const p of batch) settle(p, error);
      this.replaceProducer();
    }
  }

  /**
   * Every PROBE_MS while writes are failing: are the brokers answering, does every partition of
   * the bus's topics have a leader, does a producer connect? Then writes are let through again.
   */
  private startProbe(): void {
    if (this.probing || this.closed) return;
    this.probing = true;
    void (async () => {
      while (!this.closed && this.lastProduceError !== 0) {
        await new Promise((resolve) => setTimeout(resolve, PROBE_MS));
        const admin = this.kafka.admin({ retry: { retries: 0 } });
        try {
          await admin.connect();
          for (const topic of this.options.topics ?? []) {
            const meta = await admin.fetchTopicMetadata({ topics: [topic] });
            if (!meta.topics[0]?.partitions.every((p) => p.leader >= 0)) throw new Error(`${topic} has partitions without a leader`);
          }
          await this.getProducer();
          this.lastProduceError = 0;
          this.options.logger?.info('kafka takes writes again');
        } catch {
          // Still away: the next probe tries again.
        } finally {
          await admin.disconnect().catch(() => undefined);
        }
      }
      this.probing = false;
    })();
  }

  /** Drops the producer after a failed request: the next send starts with a new producer id (see getProducer). */
  private replaceProducer(): void {
    const old = this.producerReady;
    this.producer = null;
    this.producerReady = null;
    void old?.then((p) => p.disconnect()).catch(() => undefined);
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    await this.ensureTopic(options.topic);
    const sessionTimeout = this.options.sessionTimeoutMs ?? 6000;
    // Also how soon a member learns of a rebalance: when a member leaves (a drain), the others
    // join again within a heartbeat or so, not after the session timeout.
    const heartbeatInterval = Math.max(300, Math.min(HEARTBEAT_MAX_MS, Math.floor(sessionTimeout / 6)));
    const create = (): KafkaConsumer =>
      this.kafka.consumer({
        groupId: options.groupId,
        sessionTimeout,
        heartbeatInterval,
        rebalanceTimeout: Math.max(sessionTimeout * 2, 10_000),
        // A fetch is answered as soon as a record is there, and an idle one waits about a
        // heartbeat (kafkajs heartbeats between fetches): a member asks the broker twice a second
        // while nothing happens. Batching at low rates comes from the linger after a batch (see
        // KafkaMember), not from fetches parked in the broker for lingerMs: those cost the broker
        // a request every lingerMs per member, idle or not (at 25 ms, 3/4 of what the broker
        // spent per message at 200 messages/s here).
        minBytes: 1,
        maxWaitTimeInMs: heartbeatInterval,
        allowAutoTopicCreation: false,
        retry: { initialRetryTime: 200, maxRetryTime: 2000, retries: Number.MAX_SAFE_INTEGER },
      });
    const member = new KafkaMember(create, () => this.kafka.admin({ retry: { retries: 0 } }), options, this.options.logger, () => this.consumers.delete(member), this.options.commitEveryMs ?? 0);
    this.consumers.add(member);
    await member.start();
    return member;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
    // Let what was accepted into the queue reach Kafka before the producer goes.
    const deadline = Date.now() + (this.options.produceTimeoutMs ?? 2000);
    while ((this.sending || this.queue.some((p) => !p.settled)) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
    const producer = this.producer;
    this.producer = null;
    this.producerReady = null;
    await producer?.disconnect();
  }
}

/**
 * The topic's partition count once every partition has a leader. Right after a topic is created,
 * brokers learn of it at different moments and answer "unknown topic" meanwhile.
 */
async function leadersKnown(admin: Admin, topic: string, timeoutMs = 30_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const partitions = meta.topics[0]?.partitions ?? [];
      if (partitions.length > 0 && partitions.every((p) => p.leader >= 0)) return partitions.length;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    if (Date.now() > deadline) throw new Error(`Kafka topic ${topic} has partitions without a leader after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

function settle(pending: Pending, error?: Error): void {
  if (pending.settled) return;
  pending.settled = true;
  clearTimeout(pending.timer);
  if (error) pending.reject(error);
  else pending.resolve();
}

/**
 * One group member. kafkajs restarts a consumer by itself only after retriable errors; a
 * non-retriable one leaves it crashed for good. A broker that stalls longer than the session
 * timeout does exactly that: the group forgot the member, so the offset commit after the next
 * batch fails with UNKNOWN_MEMBER_ID (non-retriable in kafkajs), and the role would sit alive but
 * consume nothing forever. So the member replaces its crashed consumer with a new one that joins
 * the group again; the uncommitted batch is delivered again and consumers dedup by message id.
 */
export class KafkaMember implements Consumer {
  private readonly lagByPartition = new Map<number, number>();
  private stopped = false;
  private consumer: KafkaConsumer | null = null;
  private restarting: Promise<void> | null = null;
  /** Consecutive failed restarts: spaces the next attempt out. */
  private restartFailures = 0;

  /** The partitions the group gave this member at its last join. */
  private assigned: number[] = [];
  /** Batches in the handler now: their own retries are progress, not a stall. */
  private handling = 0;
  private readonly stallClock = new StallClock();
  private watchTimer: NodeJS.Timeout | null = null;
  private watching = false;
  private admin: Admin | null = null;
  /** Handled, not yet committed (see KafkaBusOptions.commitEveryMs): partition -> next offset. */
  private readonly owed = new Map<number, string>();
  private readonly committedAt = new Map<number, number>();
  private owedTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly create: () => KafkaConsumer,
    private readonly openAdmin: () => Admin,
    private readonly options: ConsumeOptions,
    private readonly logger: Logger | undefined,
    private readonly onStop: () => void,
    private readonly commitEveryMs = 0,
    private readonly stall = { afterMs: STALL_MS, everyMs: WATCH_MS },
  ) {}

  async start(): Promise<void> {
    const { options } = this;
    const consumer = this.create();
    this.consumer = consumer;
    this.assigned = [];
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (payload.restart || this.stopped || this.consumer !== consumer) return;
      this.logger?.warn({ err: payload.error, group: options.groupId }, 'kafka consumer crashed; joining the group again');
      this.restart(consumer);
    });
    // A rebalance noticed outside a batch: commit what is owed before the member joins again.
    consumer.on(consumer.events.REBALANCING, () => {
      if (this.consumer === consumer) void this.payOwed(consumer);
    });
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      if (this.consumer !== consumer) return;
      this.assigned = payload.memberAssignment[options.topic] ?? [];
      // A partition the group gave to another member is its business now: what this member owed
      // there comes again to the new owner, dropped by message id.
      for (const partition of this.owed.keys()) if (!this.assigned.includes(partition)) this.owed.delete(partition);
    });
    this.watchTimer ??= setInterval(() => void this.watch(), this.stall.everyMs);
    try {
      await consumer.connect();
      await consumer.subscribe({ topic: options.topic, fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: options.concurrency ?? 1,
        eachBatch: async ({ batch, resolveOffset, heartbeat, commitOffsetsIfNecessary, isRunning, isStale }) => {
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
            this.handling++;
            try {
              await options.handle({ topic: batch.topic, partition: batch.partition, records });
              break;
            } catch (err) {
              this.logger?.warn({ err, partition: batch.partition, group: options.groupId }, 'batch failed; retrying');
              await new Promise((resolve) => setTimeout(resolve, backoff));
              backoff = Math.min(backoff * 2, 2000);
              await heartbeat();
            } finally {
              this.handling--;
            }
          }
          const last = batch.lastOffset();
          resolveOffset(last);
          // A member that is stopping (a drain) still commits what it handled: the group's next
          // owner of the partition starts after it instead of handling it again. Only a batch the
          // group took away meanwhile (stale: a rebalance seeked the partition) is left uncommitted.
          if (isStale()) return;
          // Invariant 3: the commit follows the successful write, never precedes it.
          const next = (BigInt(last) + 1n).toString();
          const sinceCommit = Date.now() - (this.committedAt.get(batch.partition) ?? 0);
          if (this.commitEveryMs > 0 && isRunning() && !this.stopped && sinceCommit < this.commitEveryMs) {
            this.owe(consumer, batch.partition, next, this.commitEveryMs - sinceCommit);
          } else if (!(await this.commitBatch(consumer, batch.partition, next, isRunning() ? null : commitOffsetsIfNecessary))) {
            return;
          }
          this.restartFailures = 0;
          const behind = Math.max(0, Number(batch.highWatermark) - Number(last) - 1);
          this.lagByPartition.set(batch.partition, behind);
          try {
            await heartbeat();
          } catch (err) {
            // A rebalance is starting (kafkajs commits its own resolved offsets here too): what is
            // owed is committed first, so no member (this one included) handles it again.
            await this.payOwed(consumer);
            throw err;
          }
          // Caught up: the next fetch waits lingerMs, so what arrives meanwhile comes as one batch
          // (the first record of a quiet spell is handled at once). Behind: fetch again now.
          const lingerMs = options.lingerMs ?? 0;
          if (lingerMs > 0 && behind === 0 && isRunning()) await new Promise((resolve) => setTimeout(resolve, lingerMs));
        },
      });
    } catch (err) {
      // A consumer that never got running is thrown away, so a retry starts clean.
      if (this.consumer === consumer) this.consumer = null;
      await consumer.disconnect().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Commits `offsets` (partition -> next offset) in one request, bounded: kafkajs retries a commit
   * without end. `viaGroup` (a stopping consumer's): consumer.commitOffsets skips a consumer that
   * is no longer running, so the commit goes to the group directly (the member is in it until it
   * leaves). Throws when the commit failed.
   */
  private async commit(consumer: KafkaConsumer, offsets: ReadonlyArray<readonly [number, string]>, viaGroup: EachBatchPayload['commitOffsetsIfNecessary'] | null = null): Promise<void> {
    const { topic } = this.options;
    const partitions = offsets.map(([partition, offset]) => ({ partition, offset }));
    await within(
      viaGroup ? viaGroup({ topics: [{ topic, partitions }] }) : consumer.commitOffsets(partitions.map((p) => ({ topic, ...p }))),
      COMMIT_TIMEOUT_MS,
      'offset commit',
    );
    const now = Date.now();
    for (const [partition, offset] of offsets) {
      this.committedAt.set(partition, now);
      // A batch handled while this commit was on its way owes a later offset: that one stays owed.
      if (this.owed.get(partition) === offset) this.owed.delete(partition);
    }
  }

  /** A batch's own commit, now; false when it failed and the consumer is being replaced. */
  private async commitBatch(consumer: KafkaConsumer, partition: number, next: string, viaGroup: EachBatchPayload['commitOffsetsIfNecessary'] | null): Promise<boolean> {
    try {
      await this.commit(consumer, [[partition, next]], viaGroup);
      return true;
    } catch (err) {
      // The group's coordinator moved (its broker died) or forgot this member: kafkajs keeps
      // asking the old coordinator (NOT_COORDINATOR) for as long as this consumer lives, and
      // the group stalls. A fresh consumer looks the coordinator up again and rejoins; the
      // uncommitted batch comes again and is dropped by message id.
      this.logger?.warn({ err, partition, group: this.options.groupId }, 'offset commit failed; joining the group again with a fresh consumer');
      this.restart(consumer);
      return false;
    }
  }

  /** The partition's offset `next` waits for the trailing commit, due in `inMs`. */
  private owe(consumer: KafkaConsumer, partition: number, next: string, inMs: number): void {
    this.owed.set(partition, next);
    this.payOwedIn(consumer, inMs);
  }

  private payOwedIn(consumer: KafkaConsumer, inMs: number): void {
    this.owedTimer ??= setTimeout(() => {
      this.owedTimer = null;
      void this.payOwed(consumer);
    }, inMs);
  }

  private cancelPayOwed(): void {
    if (this.owedTimer) clearTimeout(this.owedTimer);
    this.owedTimer = null;
  }

  /**
   * Commits every owed offset in one request. A failure leaves them owed for the next try (a
   * batch's own commit, the next trailing one, or the stop's): a coordinator that moved for good
   * fails the next batch's commit too, which replaces the consumer, and the stall watch sees
   * commits that stopped moving.
   */
  private async payOwed(consumer: KafkaConsumer): Promise<void> {
    if (this.owed.size === 0 || this.consumer !== consumer) return;
    try {
      await this.commit(consumer, [...this.owed]);
    } catch (err) {
      this.logger?.warn({ err, group: this.options.groupId }, 'trailing offset commit failed; trying again');
      if (!this.stopped) this.payOwedIn(consumer, this.commitEveryMs);
    }
  }

  /** Replaces a crashed consumer, retrying with back-off until it runs again or the member stops. */
  private restart(crashed: KafkaConsumer): void {
    if (this.restarting) return;
    // The fresh consumer starts from the last commit: what the crashed one owed comes again,
    // dropped by message id.
    this.cancelPayOwed();
    this.owed.clear();
    const group = this.options.groupId;
    this.restarting = (async () => {
      // kafkajs's disconnect can wait forever (on a commit it keeps retrying against a coordinator
      // that moved in a rolling restart): the group would then consume nothing for good. The old
      // consumer is left behind; the group forgets it after the session timeout.
      await within(crashed.disconnect(), DISCONNECT_MS, 'the replaced kafka consumer disconnecting').catch((err: unknown) => this.logger?.warn({ err, group }, 'kafka consumer did not disconnect; starting a fresh one anyway'));
      this.lagByPartition.clear();
      while (!this.stopped) {
        const delay = Math.min(200 * 2 ** this.restartFailures, 5000);
        await new Promise((resolve) => setTimeout(resolve, delay));
        if (this.stopped) break;
        try {
          await within(this.start(), START_MS, 'a fresh kafka consumer joining the group');
          this.logger?.info({ group }, 'kafka consumer running again');
          break;
        } catch (err) {
          // A start that timed out may still be joining: that consumer goes too, so a member
          // never has two in the group.
          const late = this.consumer;
          this.consumer = null;
          if (late) void within(late.disconnect(), DISCONNECT_MS, 'a timed-out kafka consumer disconnecting').catch(() => undefined);
          this.restartFailures++;
          this.logger?.warn({ err, group, attempt: this.restartFailures }, 'kafka consumer restart failed; retrying');
        }
      }
    })().finally(() => {
      this.restarting = null;
    });
  }

  /**
   * Every few seconds: do the assigned partitions lag behind the log's end with no batch in hand
   * and no commit moving? Past the stall time the consumer is replaced (see STALL_MS). The same
   * look keeps lag() true for a consumer that stopped handling batches, whose last batch said
   * nothing about what came after it.
   */
  private async watch(): Promise<void> {
    const consumer = this.consumer;
    if (this.watching || this.stopped || this.restarting || !consumer || this.assigned.length === 0) return;
    if (this.handling > 0) {
      this.stallClock.reset();
      return;
    }
    this.watching = true;
    try {
      this.admin ??= this.openAdmin();
      await this.admin.connect();
      const { groupId, topic } = this.options;
      const [committed, ends] = await Promise.all([this.admin.fetchOffsets({ groupId, topics: [topic] }), this.admin.fetchTopicOffsets(topic)]);
      const commits = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, BigInt(p.offset)]));
      const marks: PartitionMark[] = [];
      for (const partition of this.assigned) {
        const end = ends.find((e) => e.partition === partition);
        if (!end) continue;
        const at = commits.get(partition) ?? -1n;
        // Nothing committed yet: the group starts from the beginning of what the log keeps.
        marks.push({ partition, committed: at < 0n ? BigInt(end.low) : at, end: BigInt(end.high) });
      }
      if (this.consumer !== consumer || this.handling > 0) return;
      for (const m of marks) this.lagByPartition.set(m.partition, Number(m.end - m.committed));
      const stalledMs = this.stallClock.observe(marks, Date.now());
      if (stalledMs >= this.stall.afterMs) {
        this.logger?.warn({ group: groupId, partitions: this.assigned, stalledMs }, 'kafka consumer made no progress on partitions that lag; replacing it');
        this.stallClock.reset();
        this.restart(consumer);
      }
    } catch {
      // Brokers away: the consumer's own retries and restarts handle that; look again later.
      const admin = this.admin;
      this.admin = null;
      await admin?.disconnect().catch(() => undefined);
    } finally {
      this.watching = false;
    }
  }

  async lag(): Promise<number> {
    let sum = 0;
    for (const lag of this.lagByPartition.values()) sum += lag;
    return sum;
  }

  /**
   * Leaves the group cleanly: kafkajs stops fetching, waits for the batches in hand (each commits
   * what it handled, see eachBatch) and sends LeaveGroup, so the other members take this one's
   * partitions at their next heartbeat instead of after the session timeout.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    // A restart may be retrying against a broker that is still away: do not wait on it for long.
    if (this.restarting) await within(this.restarting, 5000, 'a kafka consumer restart').catch(() => undefined);
    if (this.watchTimer) clearInterval(this.watchTimer);
    this.cancelPayOwed();
    // What was handled and not yet committed is committed while the member is still in the group.
    if (this.consumer) await this.payOwed(this.consumer);
    // Bounded for the same reason as in restart(): a stop must end.
    if (this.consumer) await within(this.consumer.disconnect(), DISCONNECT_MS, 'a kafka consumer leaving the group').catch((err: unknown) => this.logger?.warn({ err, group: this.options.groupId }, 'kafka consumer did not leave the group in time'));
    await this.admin?.disconnect().catch(() => undefined);
    this.onStop();
  }
}
