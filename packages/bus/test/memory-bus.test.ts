import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BusUnavailableError, MemoryBus, type Batch } from '@danmaku/bus';
import { waitFor } from '@danmaku/testkit';

const TOPIC = 't';

test('records of a partition arrive in order, partitions independently, each once', async () => {
  const bus = new MemoryBus({ partitions: 4 });
  const seen = new Map<number, number[]>();
  const consumer = await bus.consume({
    topic: TOPIC,
    groupId: 'g',
    maxBatch: 7,
    handle: async (batch: Batch) => {
      for (const r of batch.records) {
        const list = seen.get(batch.partition) ?? [];
        list.push(Number(r.value));
        seen.set(batch.partition, list);
      }
    },
  });
  for (let i = 0; i < 400; i++) await bus.produce(TOPIC, [{ key: `k${i % 4}`, value: String(i), partition: i % 4 }]);
  await waitFor('all records', async () => (await consumer.lag()) === 0 && [...seen.values()].flat().length === 400);
  for (let p = 0; p < 4; p++) {
    const values = seen.get(p) ?? [];
    assert.equal(values.length, 100);
    assert.deepEqual(values, [...values].sort((a, b) => a - b));
    assert.ok(values.every((v) => v % 4 === p));
  }
  await bus.close();
});

test('a failing batch is delivered again, not skipped; the commit follows success', async () => {
  const bus = new MemoryBus({ partitions: 1 });
  let failures = 2;
  const delivered: string[] = [];
  const consumer = await bus.consume({
    topic: TOPIC,
    groupId: 'g',
    handle: async (batch) => {
      if (failures > 0) {
        failures--;
        throw new Error('store down');
      }
      delivered.push(...batch.records.map((r) => r.value));
    },
  });
  await bus.produce(TOPIC, [{ key: 'k', value: 'a', partition: 0 }, { key: 'k', value: 'b', partition: 0 }]);
  assert.equal(await consumer.lag(), 2);
  await waitFor('redelivery', () => delivered.length === 2);
  assert.deepEqual(delivered, ['a', 'b']);
  assert.equal(failures, 0);
  assert.equal(await consumer.lag(), 0);
  await bus.close();
});

test('two groups each get every record; a new group starts at the end', async () => {
  const bus = new MemoryBus({ partitions: 2 });
  const a: string[] = [];
  const b: string[] = [];
  await bus.consume({ topic: TOPIC, groupId: 'a', handle: async (batch) => void a.push(...batch.records.map((r) => r.value)) });
  await bus.produce(TOPIC, [{ key: 'k', value: 'early', partition: 0 }]);
  await bus.consume({ topic: TOPIC, groupId: 'b', handle: async (batch) => void b.push(...batch.records.map((r) => r.value)) });
  await bus.produce(TOPIC, [{ key: 'k', value: 'late', partition: 1 }]);
  await waitFor('both groups', () => a.length === 2 && b.length === 1);
  assert.deepEqual(a.sort(), ['early', 'late']);
  assert.deepEqual(b, ['late']);
  await assert.rejects(bus.consume({ topic: TOPIC, groupId: 'a', handle: async () => undefined }), /already has a consumer/);
  await bus.close();
});

test('back-pressure: a partition with too much uncommitted work refuses new records', async () => {
  const bus = new MemoryBus({ partitions: 1, maxBacklog: 3 });
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  await bus.consume({ topic: TOPIC, groupId: 'g', maxBatch: 1, handle: () => gate });
  for (let i = 0; i < 3; i++) await bus.produce(TOPIC, [{ key: 'k', value: String(i), partition: 0 }]);
  await assert.rejects(bus.produce(TOPIC, [{ key: 'k', value: 'x', partition: 0 }]), BusUnavailableError);
  release();
  await waitFor('room again', async () => {
    try {
      await bus.produce(TOPIC, [{ key: 'k', value: 'y', partition: 0 }]);
      return true;
    } catch {
      return false;
    }
  });
  await bus.close();
  await assert.rejects(bus.produce(TOPIC, [{ key: 'k', value: 'z', partition: 0 }]), BusUnavailableError);
});

test('lingerMs gathers records that trickle in into fewer batches', async () => {
  const batchesWith = async (lingerMs: number): Promise<number> => {
    const bus = new MemoryBus({ partitions: 1 });
    let batches = 0;
    let records = 0;
    await bus.consume({
      topic: TOPIC,
      groupId: 'g',
      lingerMs,
      handle: async (batch) => {
        batches++;
        records += batch.records.length;
      },
    });
    for (let i = 0; i < 10; i++) {
      await bus.produce(TOPIC, [{ key: 'k', value: String(i), partition: 0 }]);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    await waitFor('all records', () => records === 10);
    await bus.close();
    return batches;
  };
  const eager = await batchesWith(0);
  const lingering = await batchesWith(300);
  assert.ok(eager >= 5, `without linger: ${eager} batches`);
  assert.ok(lingering <= 2, `with linger: ${lingering} batches`);
});
