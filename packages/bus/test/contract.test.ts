/**
 * The bus contract: the same tests against every implementation (the Kafka bus over the dev
 * broker, and the in-memory bus of standalone), so the roles can count on one set of semantics
 * whichever bus carries their records. Where an implementation deliberately differs (the memory
 * bus has one member per group in its one process; only it bounds its backlog itself), the
 * difference is declared in its engine and tested as such.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BusUnavailableError, KafkaBus, MemoryBus, type Batch, type Bus, type Consumer, type ProduceRecord } from '@danmaku/bus';
import { sleep, startKafka, waitFor, type TestKafka } from '@danmaku/testkit';

const PARTITIONS = 4;
// As the roles run (DANMAKU_KAFKA_COMMIT_MS's default): every contract holds with commits that trail the batches.
const COMMIT_EVERY_MS = 500;
/** Kafka group joins and rebalances take seconds, more on a loaded machine. */
const SETTLE_MS = 60_000;

interface Engine {
  name: string;
  /** Once per suite. */
  setup(): Promise<void>;
  teardown(): Promise<void>;
  /** A topic no other test uses. */
  topic(): string;
  /** A bus as one process would open it; a second call is a second process. */
  open(): Promise<Bus>;
  /** Can several members of one group share its partitions? */
  splitsGroups: boolean;
  /** Does the bus itself refuse records beyond a backlog (rather than the broker's disk)? */
  boundedBacklog: ((maxBacklog: number) => Bus) | null;
  /** A bus of its own on a topic, and a way to make it unable to take writes (its broker gone, the bus closed). */
  breakable(): Promise<{ bus: Bus; topic: string; breakIt(): Promise<void> }>;
}

function memoryEngine(): Engine {
  let n = 0;
  // The in-memory bus lives in one process: every "process" of a test shares it.
  let shared: MemoryBus | null = null;
  return {
    name: 'memory bus',
    async setup() {
      shared = new MemoryBus({ partitions: PARTITIONS });
    },
    async teardown() {
      await shared?.close();
    },
    topic: () => `contract-${++n}`,
    open: async () => shared as MemoryBus,
    splitsGroups: false,
    boundedBacklog: (maxBacklog) => new MemoryBus({ partitions: 1, maxBacklog }),
    async breakable() {
      const bus = new MemoryBus({ partitions: 1 });
      return { bus, topic: 't', breakIt: () => bus.close() };
    },
  };
}

function kafkaEngine(): Engine {
  let n = 0;
  let kafka: TestKafka | null = null;
  const opened: Bus[] = [];
  const open = async (brokers: string[]): Promise<KafkaBus> => {
    const bus = new KafkaBus({ brokers, clientId: `contract-${opened.length}`, partitions: PARTITIONS, produceTimeoutMs: 3000, sessionTimeoutMs: 3000, commitEveryMs: COMMIT_EVERY_MS });
    opened.push(bus);
    await bus.connect();
    return bus;
  };
  return {
    name: 'Kafka bus (Apache Kafka broker)',
    async setup() {
      kafka = await startKafka();
    },
    async teardown() {
      for (const bus of opened) await bus.close().catch(() => undefined);
      await kafka?.stop();
    },
    // The bus creates the topics it is asked to use, through the admin API.
    topic: () => `contract-${++n}`,
    open: () => open((kafka as TestKafka).brokers),
    splitsGroups: true,
    boundedBacklog: null,
    async breakable() {
      // A broker of its own, stopped: the shared one serves the other tests.
      const own = await startKafka();
      const bus = new KafkaBus({ brokers: own.brokers, clientId: 'contract-broken', partitions: 1, produceTimeoutMs: 3000 });
      await bus.connect();
      await bus.ensureTopic('t');
      return {
        bus,
        topic: 't',
        async breakIt() {
          await own.stop();
        },
      };
    },
  };
}

/** Records each handled batch; `fail` decides per batch whether the handler throws. */
function recorder(fail: (batch: Batch) => boolean = () => false) {
  const batches: Batch[] = [];
  const values: string[] = [];
  return {
    batches,
    values,
    handle: async (batch: Batch): Promise<void> => {
      if (fail(batch)) throw new Error('handler failed before its work was done');
      batches.push(batch);
      values.push(...batch.records.map((r) => r.value));
    },
  };
}

const records = (count: number, prefix: string, from = 0): ProduceRecord[] =>
  Array.from({ length: count }, (_, i) => ({ key: `key-${(from + i) % PARTITIONS}`, value: `${prefix}${from + i}`, partition: (from + i) % PARTITIONS }));

for (const engine of [memoryEngine(), kafkaEngine()]) {
  describe(`bus contract: ${engine.name}`, () => {
    const consumers: Consumer[] = [];
    let groups = 0;
    /** A group no other test uses; within a test, the same name is the same group. */
    const group = (name: string): string => `${name}-${groups}`;
    beforeEach(() => void groups++);
    const consume = async (bus: Bus, ...args: Parameters<Bus['consume']>): Promise<Consumer> => {
      const consumer = await bus.consume(...args);
      consumers.push(consumer);
      return consumer;
    };

    before(() => engine.setup());
    after(async () => {
      for (const c of consumers) await c.stop();
      await engine.teardown();
    });

    it('delivers every record to the partition the producer named, with its key, in order within the partition', async () => {
      const bus = await engine.open();
      const topic = engine.topic();
      const seen = recorder();
      const consumer = await consume(bus, { topic, groupId: group('g'), handle: seen.handle, maxBatch: 7 });
      const sent = records(200, 'r');
      for (let i = 0; i < sent.length; i += 10) await bus.produce(topic, sent.slice(i, i + 10));
      await waitFor('every record', () => seen.values.length >= sent.length, SETTLE_MS);
      assert.equal(seen.values.length, sent.length, 'each record once');
      for (const batch of seen.batches) {
        assert.equal(batch.topic, topic);
        for (const r of batch.records) {
          assert.equal(r.partition, batch.partition, 'a batch holds one partition');
          assert.equal(r.key, `key-${batch.partition}`, 'the key travels with its record');
          assert.equal(Number(r.value.slice(1)) % PARTITIONS, batch.partition, 'the record is in the partition it was produced to');
        }
      }
      for (let p = 0; p < PARTITIONS; p++) {
        const inPartition = seen.batches.filter((b) => b.partition === p).flatMap((b) => b.records);
        const order = inPartition.map((r) => Number(r.value.slice(1)));
        assert.deepEqual(order, [...order].sort((a, b) => a - b), `partition ${p} in produce order`);
        const offsets = inPartition.map((r) => BigInt(r.offset));
        for (let i = 1; i < offsets.length; i++) assert.ok((offsets[i] as bigint) > (offsets[i - 1] as bigint), 'offsets increase');
      }
      await waitFor('lag 0 once everything is committed', async () => (await consumer.lag()) === 0, SETTLE_MS);
    });

    it('lingerMs: the first record of a quiet spell is handled at once; those arriving within the linger after it come as one batch', async () => {
      const LINGER = 1500;
      const bus = await engine.open();
      const topic = engine.topic();
      const handled: { at: number; values: string[] }[] = [];
      await consume(bus, { topic, groupId: group('g'), lingerMs: LINGER, handle: async (batch) => void handled.push({ at: performance.now(), values: batch.records.map((r) => r.value) }) });
      // The member is in its group and consuming once a first record came through.
      await bus.produce(topic, [{ key: 'k', value: 'primer', partition: 0 }]);
      await waitFor('the primer', () => handled.length === 1, SETTLE_MS);
      await sleep(LINGER + 300);
      const sentAt = performance.now();
      await bus.produce(topic, [{ key: 'k', value: 'a', partition: 0 }]);
      await sleep(100);
      await bus.produce(topic, [{ key: 'k', value: 'b', partition: 0 }]);
      await bus.produce(topic, [{ key: 'k', value: 'c', partition: 0 }]);
      await waitFor('a, b and c', () => handled.flatMap((h) => h.values).length === 4, SETTLE_MS);
      const [, first, second] = handled;
      assert.deepEqual(first?.values, ['a']);
      assert.ok((first?.at ?? Infinity) - sentAt < LINGER - 500, `the first record waited ${Math.round((first?.at ?? 0) - sentAt)} ms: it should not wait out the linger`);
      assert.deepEqual(second?.values, ['b', 'c'], 'the records within the linger came together');
    });

    it('commits only after the handler resolved: a failed batch comes again, whole and in order', async () => {
      const bus = await engine.open();
      const topic = engine.topic();
      let failures = 2;
      const seen = recorder(() => failures-- > 0);
      await consume(bus, { topic, groupId: group('g'), handle: seen.handle });
      await bus.produce(topic, [
        { key: 'k', value: 'a', partition: 0 },
        { key: 'k', value: 'b', partition: 0 },
        { key: 'k', value: 'c', partition: 0 },
      ]);
      await waitFor('redelivery', () => seen.values.length >= 3, SETTLE_MS);
      assert.ok(failures < 0, 'the handler failed twice first');
      assert.deepEqual(seen.values, ['a', 'b', 'c']);
    });

    it('a member that stops without committing leaves its records to the next member of the group', async () => {
      const topic = engine.topic();
      const first = await engine.open();
      // This member never finishes a batch: like a process that dies before its commit.
      const crashed = recorder(() => true);
      let attempts = 0;
      const firstConsumer = await first.consume({
        topic,
        groupId: group('g'),
        handle: async (batch) => {
          attempts++;
          await crashed.handle(batch);
        },
      });
      await first.produce(topic, records(8, 'x'));
      await waitFor('the first member to try', () => attempts > 0, SETTLE_MS);
      await firstConsumer.stop();

      const second = await engine.open();
      const seen = recorder();
      await consume(second, { topic, groupId: group('g'), handle: seen.handle });
      await waitFor('the next member to get every record', () => new Set(seen.values).size >= 8, SETTLE_MS);
      // At least once: should the group rebalance again while the first member is still leaving,
      // a batch the next member handled but had not committed yet comes to it again (consumers
      // drop such repeats by message id). What must hold is that nothing is lost.
      assert.deepEqual([...new Set(seen.values)].sort(), records(8, 'x').map((r) => r.value).sort());
    });

    it('two groups each see every record', async () => {
      const bus = await engine.open();
      const topic = engine.topic();
      const a = recorder();
      const b = recorder();
      await consume(bus, { topic, groupId: group('a'), handle: a.handle });
      await consume(bus, { topic, groupId: group('b'), handle: b.handle });
      const sent = records(40, 'm');
      await bus.produce(topic, sent);
      await waitFor('both groups', () => a.values.length >= 40 && b.values.length >= 40, SETTLE_MS);
      const all = sent.map((r) => r.value).sort();
      assert.deepEqual([...a.values].sort(), all);
      assert.deepEqual([...b.values].sort(), all);
    });

    if (engine.splitsGroups) {
      it('members of one group split the partitions: each record to one member, nothing lost', async () => {
        const topic = engine.topic();
        const busA = await engine.open();
        const busB = await engine.open();
        const a = recorder();
        const b = recorder();
        await consume(busA, { topic, groupId: group('g'), handle: a.handle });
        await consume(busB, { topic, groupId: group('g'), handle: b.handle });
        // Waves until both members hold partitions (joins and the rebalance take seconds).
        let sent = 0;
        await waitFor(
          'both members to take part',
          async () => {
            await busA.produce(topic, records(PARTITIONS, 'w', sent));
            sent += PARTITIONS;
            return a.values.length > 0 && b.values.length > 0;
          },
          SETTLE_MS,
          500,
        );
        // Once the group is stable, a partition belongs to one member.
        const before = { a: a.batches.length, b: b.batches.length };
        const wave = records(PARTITIONS * 10, 'w', sent);
        await busA.produce(topic, wave);
        sent += wave.length;
        const all = records(sent, 'w').map((r) => r.value);
        await waitFor('every record', () => all.every((v) => a.values.includes(v) || b.values.includes(v)), SETTLE_MS);
        const partitionsOf = (batches: Batch[]): Set<number> => new Set(batches.map((batch) => batch.partition));
        const lastA = partitionsOf(a.batches.slice(before.a));
        const lastB = partitionsOf(b.batches.slice(before.b));
        assert.ok(lastA.size > 0 && lastB.size > 0, `both members consumed the last wave (${[...lastA]} / ${[...lastB]})`);
        for (const p of lastA) assert.ok(!lastB.has(p), `partition ${p} consumed by both members after the rebalance`);
        const waveValues = wave.map((r) => r.value);
        const seenTwice = waveValues.filter((v) => a.values.includes(v) && b.values.includes(v));
        assert.deepEqual(seenTwice, [], 'no record of a stable group reaches two members');
      });
    } else {
      it('one member per group: a second member is refused rather than delivered the same records', async () => {
        const bus = await engine.open();
        const topic = engine.topic();
        await consume(bus, { topic, groupId: group('g'), handle: async () => undefined });
        await assert.rejects(bus.consume({ topic, groupId: group('g'), handle: async () => undefined }), /already has a consumer/);
      });
    }

    if (engine.boundedBacklog) {
      const bounded = engine.boundedBacklog;
      it('back-pressure: a partition with too much uncommitted work refuses records until it drains', async () => {
        const bus = bounded(3);
        const topic = engine.topic();
        let release: () => void = () => undefined;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const consumer = await bus.consume({ topic, groupId: group('g'), maxBatch: 1, handle: () => gate });
        for (let i = 0; i < 3; i++) await bus.produce(topic, [{ key: 'k', value: String(i), partition: 0 }]);
        await assert.rejects(bus.produce(topic, [{ key: 'k', value: 'x', partition: 0 }]), BusUnavailableError);
        release();
        await waitFor('room again', async () => (await consumer.lag()) === 0, SETTLE_MS);
        await bus.produce(topic, [{ key: 'k', value: 'y', partition: 0 }]);
        await bus.close();
      });
    }

    it('a bus that cannot take writes refuses them fast with BusUnavailableError and says it is unhealthy', async () => {
      const { bus, topic, breakIt } = await engine.breakable();
      await bus.produce(topic, [{ key: 'k', value: 'before', partition: 0 }]);
      assert.equal(bus.healthy(), true);
      await breakIt();
      const started = Date.now();
      await assert.rejects(bus.produce(topic, [{ key: 'k', value: 'after', partition: 0 }]), BusUnavailableError);
      assert.ok(Date.now() - started < 10_000, `refused within its timeout (${Date.now() - started} ms)`);
      assert.equal(bus.healthy(), false);
      await bus.close().catch(() => undefined);
    });
  });
}
