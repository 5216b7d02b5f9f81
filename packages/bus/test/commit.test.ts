import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { KafkaBus } from '@danmaku/bus';
import { sleep, startKafka, waitFor, type TestKafka } from '@danmaku/testkit';

/**
 * Offset commits at most every commitEveryMs per partition: batches handled in between leave
 * their offsets owed, one trailing commit pays them when the interval is up, and a stop pays
 * what is owed before the member leaves its group, so the next owner starts after it.
 */
const TOPIC = 'commit-test';
const EVERY_MS = 4000;
let kafka: TestKafka;
let bus: KafkaBus;
let admin: Admin;

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: 1 } });
  bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'commit-test', partitions: 1, produceTimeoutMs: 10_000, sessionTimeoutMs: 6000, commitEveryMs: EVERY_MS });
  await bus.connect();
  admin = new Kafka({ clientId: 'commit-test-admin', brokers: kafka.brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
});
after(async () => {
  await admin?.disconnect();
  await bus?.close();
  await kafka?.stop();
});

const committed = async (groupId: string): Promise<number> => Number((await admin.fetchOffsets({ groupId, topics: [TOPIC] }))[0]?.partitions[0]?.offset ?? -1);
const end = async (): Promise<number> => Number((await admin.fetchTopicOffsets(TOPIC))[0]?.high ?? -1);

test('batches within the interval are committed by one trailing commit; a stop commits what is owed', { timeout: 90_000 }, async () => {
  const groupId = 'commit-test-group';
  const handled: string[] = [];
  const batchesAt: number[] = [];
  const consumer = await bus.consume({
    topic: TOPIC,
    groupId,
    handle: async (batch) => {
      batchesAt.push(Date.now());
      for (const r of batch.records) handled.push(r.value);
    },
  });
  // The first batch commits at once: nothing was committed within the interval.
  await bus.produce(TOPIC, [{ key: 'k', value: 'first', partition: 0 }]);
  await waitFor('the first record committed', async () => (await committed(groupId)) === (await end()), 20_000, 50);
  const firstCommitted = Date.now();
  // Records one at a time, each its own batch, well within the interval of that commit.
  for (let i = 0; i < 5; i++) {
    await bus.produce(TOPIC, [{ key: 'k', value: `r${i}`, partition: 0 }]);
    await waitFor(`r${i} handled`, () => handled.includes(`r${i}`), 10_000, 5);
  }
  const handledAllAt = Date.now();
  assert.ok(batchesAt.length >= 3, `several batches (${batchesAt.length})`);
  const target = await end();
  // Handled well within the interval (the first commit was seen a little after it was made).
  assert.ok(handledAllAt - firstCommitted < EVERY_MS / 2, `the records took ${handledAllAt - firstCommitted} ms`);
  assert.ok((await committed(groupId)) < target, 'the batches after the first commit wait for the trailing commit');
  // The trailing commit pays every owed offset once the interval is up.
  await waitFor('the trailing commit', async () => (await committed(groupId)) === target, EVERY_MS + 5_000, 50);
  const paidAfter = Date.now() - firstCommitted;
  assert.ok(paidAfter >= EVERY_MS / 2, `paid ${paidAfter} ms after the first commit: at the end of the interval, not per batch`);

  // Handled and owed when the member stops: the stop commits it before leaving the group.
  await sleep(EVERY_MS + 200);
  await bus.produce(TOPIC, [{ key: 'k', value: 'last-a', partition: 0 }]);
  await waitFor('last-a handled', () => handled.includes('last-a'), 10_000, 5);
  await bus.produce(TOPIC, [{ key: 'k', value: 'last-b', partition: 0 }]);
  await waitFor('last-b handled', () => handled.includes('last-b'), 10_000, 5);
  const last = await end();
  await consumer.stop();
  assert.equal(await committed(groupId), last, 'everything handled is committed once the stop returns');
  assert.equal(new Set(handled).size, handled.length, 'nothing handled twice');
});
