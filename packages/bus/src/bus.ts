/**
 * The message bus between fronts and the consumer groups (processor, archiver). Two real
 * implementations: Kafka (kafkajs) for the scaled-out system and memory for standalone. Both
 * keep Kafka's semantics: a record goes to the partition the producer names, a partition is
 * consumed in order by one member of a group, and a batch's offsets are committed only after
 * its handler resolved (at-least-once; consumers dedup by message id).
 */

export interface ProduceRecord {
  key: string;
  value: string;
  partition: number;
}

export interface BusRecord extends ProduceRecord {
  offset: string;
}

export interface Batch {
  topic: string;
  partition: number;
  records: BusRecord[];
}

/** Resolve to commit the batch; throw to have it delivered again (after a back-off). */
export type BatchHandler = (batch: Batch) => Promise<void>;

export interface ConsumeOptions {
  topic: string;
  groupId: string;
  handle: BatchHandler;
  /** Most records per batch (memory bus; Kafka batches by bytes). */
  maxBatch?: number;
  /** Partitions handled at the same time by this member. */
  concurrency?: number;
  /**
   * After a batch that caught the partition up, how long the member waits before it takes the
   * next one: the first record of a quiet spell is handled at once, and what arrives within the
   * linger comes as one batch. Fewer, larger batches at low rates for a few ms of latency on
   * the records that follow: a few ms for the processor, more for the archive.
   */
  lingerMs?: number;
}

export interface Consumer {
  /** Records produced but not yet committed by this group, summed over partitions. */
  lag(): Promise<number>;
  stop(): Promise<void>;
}

export interface Bus {
  readonly kind: 'kafka' | 'memory';
  /** Partitions of the message topic. */
  readonly partitions: number;
  /** Resolves once the records are accepted (Kafka: acknowledged by all in-sync replicas). */
  produce(topic: string, records: readonly ProduceRecord[]): Promise<void>;
  consume(options: ConsumeOptions): Promise<Consumer>;
  /** True while the bus can take writes: feeds /readyz and a fast 503. */
  healthy(): boolean;
  close(): Promise<void>;
}

export class BusUnavailableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusUnavailableError';
  }
}
