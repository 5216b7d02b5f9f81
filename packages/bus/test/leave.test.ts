/**
 * A consumer that stops (a role drained by SIGTERM) finishes and commits the batch in hand and
 * leaves its group: the other member owns every partition within about a second or two, far
 * sooner than the session timeout, and no record is handled by both members or by neither.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus, type Consumer } from '@danmaku/bus';
import { startKafka, waitFor, type TestKafka } from '@danmaku/testkit';

const TOPIC = 'leave';
const PARTITIONS = 4;
/** A member that vanished without leaving would keep its partitions this long. */
const SESSION_MS = 10_000;

let kafka: TestKafka;
const buses: KafkaBus[] = [];
const consumers: Consumer[] = [];

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: PARTITIONS } });
});

after(async () => {
  for (const c of consumers) await c.stop().catch(() => undefined);
  for (const b of buses) await b.close().catch(() => undefined);
  await kafka.stop();
});

function openBus(clientId: string): KafkaBus {
  const bus = new KafkaBus({ brokers: kafka.brokers, clientId, partitions: PARTITIONS, sessionTimeoutMs: SESSION_MS, commitEveryMs: 500 });
  buses.push(bus);
  return bus;
}

it('a member that stops leaves the group: the other takes every partition at once, each record handled once', { timeout: 120_000 }, async () => {
  const producer = openBus('leave-producer');
  await producer.connect();
  /** Who handled each record (value), in order. */
  const handledBy = new Map<string, string[]>();
  /** When each member last handled a record of each partition. */
  const lastSeen = { a: new Map<number, number>(), b: new Map<number, number>() };
  const member = async (name: 'a' | 'b'): Promise<Consumer> => {
    const consumer = await openBus(`leave-${name}`).consume({
      topic: TOPIC,
      groupId: 'leave-group',
      concurrency: PARTITIONS,
      lingerMs: 5,
      handle: async (batch) => {
        // A batch takes a while, so the stop below finds one in hand.
        await new Promise((resolve) => setTimeout(resolve, 20));
        for (const r of batch.records) handledBy.set(r.value, [...(handledBy.get(r.value) ?? []), name]);
        lastSeen[name].set(batch.partition, Date.now());
      },
    });
    consumers.push(consumer);
    return consumer;
  };
  const a = await member('a');
  const b = await member('b');

  const acked: string[] = [];
  let i = 0;
  let producing = true;
  const produce = (async () => {
    while (producing) {
      const batch = Array.from({ length: PARTITIONS }, (_, p) => ({ key: `k${p}`, value: `m${i++}`, partition: p }));
      await producer.produce(TOPIC, batch);
      acked.push(...batch.map((r) => r.value));
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  })();

  await waitFor('both members to own partitions', () => lastSeen.a.size > 0 && lastSeen.b.size > 0 && lastSeen.a.size + lastSeen.b.size >= PARTITIONS, 60_000, 20);
  // Let the group settle (both members took their share) before one leaves.
  await waitFor('records flowing to both members', () => handledBy.size > 400, 60_000, 20);
  const aOwned = [...lastSeen.a.keys()];

  await a.stop();
  const left = Date.now();
  // The survivor handles records of every partition, those of the member that left included.
  const takeover = await waitFor(
    'the survivor to own every partition',
    () => (Array.from({ length: PARTITIONS }, (_, p) => lastSeen.b.get(p) ?? 0).every((t) => t > left) ? Date.now() - left : 0),
    SESSION_MS * 2,
    10,
  );
  process.stdout.write(`# the survivor owned all ${PARTITIONS} partitions ${takeover} ms after the other left (it had ${aOwned.length}); session timeout ${SESSION_MS} ms\n`);
  assert.ok(takeover < 3000, `takeover took ${takeover} ms: the group waited for the session to expire instead of a LeaveGroup`);

  producing = false;
  await produce;
  await waitFor('every acknowledged record handled', () => acked.every((v) => handledBy.has(v)), 60_000, 20);
  const twice = [...handledBy].filter(([, by]) => by.length > 1);
  assert.deepEqual(twice.slice(0, 5), [], `${twice.length} records handled more than once: the leaving member's last batch was not committed`);
  await b.stop();
});
