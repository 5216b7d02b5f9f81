import type { Logger } from '@danmaku/observability';
import { BusUnavailableError, type Batch, type Bus, type BusRecord, type ConsumeOptions, type Consumer, type ProduceRecord } from './bus.js';

/** One partition's log; records before `base` were committed by every group and dropped. */
class PartitionLog {
  base = 0;
  records: ProduceRecord[] = [];
  private wakers: (() => void)[] = [];

  get end(): number {
    return this.base + this.records.length;
  }

  append(record: ProduceRecord): void {
    this.records.push(record);
    const wakers = this.wakers;
    this.wakers = [];
    for (const wake of wakers) wake();
  }

  slice(from: number, max: number, partition: number): BusRecord[] {
    const start = from - this.base;
    return this.records.slice(start, start + max).map((r, i) => ({ ...r, partition, offset: String(from + i) }));
  }

  /** Resolves when something is appended, or after `ms`. */
  waitForAppend(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakers.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  dropBefore(offset: number): void {
    const n = offset - this.base;
    if (n <= 0) return;
    // Splicing on every commit would be quadratic in a hot partition; drop in chunks.
    if (n >= 1024 || n === this.records.length) {
      this.records = this.records.slice(n);
      this.base = offset;
    }
  }
}

class MemoryTopic {
  readonly logs: PartitionLog[];
  readonly groups = new Map<string, number[]>();

  constructor(partitions: number) {
    this.logs = Array.from({ length: partitions }, () => new PartitionLog());
  }

  committed(groupId: string): number[] {
    let offsets = this.groups.get(groupId);
    if (!offsets) {
      // Like Kafka's auto.offset.reset=latest: a new group starts at the end.
      offsets = this.logs.map((log) => log.end);
      this.groups.set(groupId, offsets);
    }
    return offsets;
  }

  trim(partition: number): void {
    let min = Number.POSITIVE_INFINITY;
    for (const offsets of this.groups.values()) min = Math.min(min, offsets[partition] ?? 0);
    if (Number.isFinite(min)) this.logs[partition]?.dropBefore(min);
  }
}

export interface MemoryBusOptions {
  partitions: number;
  /** Uncommitted records a partition may hold before produce refuses (503): back-pressure. */
  maxBacklog?: number;
  logger?: Logger;
}

/**
 * The embedded bus of standalone: Kafka's partition and commit semantics inside one process.
 * Nothing here survives the process; that is the trade the standalone mode makes.
 */
export class MemoryBus implements Bus {
  readonly kind = 'memory' as const;
  readonly partitions: number;
  private readonly topics = new Map<string, MemoryTopic>();
  private readonly maxBacklog: number;
  private readonly consumers = new Set<MemoryConsumer>();
  private closed = false;

  constructor(private readonly options: MemoryBusOptions) {
    this.partitions = options.partitions;
    this.maxBacklog = options.maxBacklog ?? 200_000;
  }

  private topic(name: string): MemoryTopic {
    let topic = this.topics.get(name);
    if (!topic) {
      topic = new MemoryTopic(this.partitions);
      this.topics.set(name, topic);
    }
    return topic;
  }

  healthy(): boolean {
    return !this.closed;
  }

  async produce(topicName: string, records: readonly ProduceRecord[]): Promise<void> {
    if (this.closed) throw new BusUnavailableError('the bus is closed');
    const topic = this.topic(topicName);
    for (const record of records) {
      const log = topic.logs[record.partition];
      if (!log) throw new RangeError(`partition ${record.partition} out of range 0..${this.partitions - 1}`);
      let committed = log.end;
      for (const offsets of topic.groups.values()) committed = Math.min(committed, offsets[record.partition] ?? 0);
      if (log.end - committed >= this.maxBacklog) {
        throw new BusUnavailableError(`partition ${record.partition} has ${this.maxBacklog} records waiting`);
      }
    }
    for (const record of records) topic.logs[record.partition]?.append(record);
  }

  async consume(options: ConsumeOptions): Promise<Consumer> {
    const topic = this.topic(options.topic);
    // One member per group: the memory bus does not split partitions, so a second would double-deliver.
    if ([...this.consumers].some((c) => c.groupId === options.groupId)) {
      throw new Error(`group ${options.groupId} already has a consumer on this bus`);
    }
    const consumer = new MemoryConsumer(topic, options, this.options.logger, () => this.consumers.delete(consumer));
    this.consumers.add(consumer);
    return consumer;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.consumers].map((c) => c.stop()));
  }
}

class MemoryConsumer implements Consumer {
  readonly groupId: string;
  private stopped = false;
  private readonly loops: Promise<void>[];
  private readonly offsets: number[];
  private inFlight = 0;
  private readonly slotWaiters: (() => void)[] = [];

  constructor(
    private readonly topic: MemoryTopic,
    private readonly options: ConsumeOptions,
    private readonly logger: Logger | undefined,
    private readonly onStop: () => void,
  ) {
    this.groupId = options.groupId;
    this.offsets = topic.committed(options.groupId);
    this.loops = topic.logs.map((_, p) => this.run(p));
  }

  private async acquire(): Promise<void> {
    const limit = this.options.concurrency ?? Number.POSITIVE_INFINITY;
    while (this.inFlight >= limit) await new Promise<void>((resolve) => this.slotWaiters.push(resolve));
    this.inFlight++;
  }

  private release(): void {
    this.inFlight--;
    this.slotWaiters.shift()?.();
  }

  private async run(partition: number): Promise<void> {
    const log = this.topic.logs[partition] as PartitionLog;
    const maxBatch = this.options.maxBatch ?? 500;
    let backoff = 50;
    while (!this.stopped) {
      const from = this.offsets[partition] ?? 0;
      if (from >= log.end) {
        await log.waitForAppend(500);
        continue;
      }
      let caughtUp = false;
      await this.acquire();
      try {
        const records = log.slice(from, maxBatch, partition);
        // Whether the batch took all there was, as a Kafka fetch knows it: records that arrive
        // while it is handled wait for the linger too.
        const tookAll = from + records.length >= log.end;
        const batch: Batch = { topic: this.options.topic, partition, records };
        await this.options.handle(batch);
        this.offsets[partition] = from + records.length;
        this.topic.trim(partition);
        backoff = 50;
        caughtUp = tookAll;
      } catch (err) {
        this.logger?.warn({ err, partition, group: this.groupId }, 'batch failed; it will be delivered again');
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, 2000);
      } finally {
        this.release();
      }
      // As the Kafka bus: the first record of a quiet spell is handled at once, and what arrives
      // within the linger after a batch waits for the next one.
      const linger = this.options.lingerMs ?? 0;
      if (caughtUp && linger > 0 && !this.stopped) await new Promise((resolve) => setTimeout(resolve, linger));
    }
  }

  async lag(): Promise<number> {
    return this.topic.logs.reduce((sum, log, p) => sum + (log.end - (this.offsets[p] ?? 0)), 0);
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await Promise.all(this.loops);
    this.onStop();
  }
}
