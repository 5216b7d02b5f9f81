/**
 * A consumer that stops fetching its partitions without crashing (kafkajs can, after a broker
 * restart) is found by the member's stall watch and replaced: every record still gets handled.
 * The stall is made with kafkajs's own pause(), which stops fetching exactly as the stuck
 * consumer does; a consumer that is slow inside its handler, or simply idle, is left alone.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Kafka, logLevel, type Consumer as KafkaConsumer } from 'kafkajs';
import { startKafka, waitFor, type TestKafka } from '@danmaku/testkit';
import { createLogger } from '@danmaku/observability';
import { KafkaMember, StallClock } from '../src/kafka.js';

test('the stall clock counts only a lagging partition whose commit stands still', () => {
  const clock = new StallClock();
  const mark = (partition: number, committed: number, end: number) => ({ partition, committed: BigInt(committed), end: BigInt(end) });
  assert.equal(clock.observe([mark(0, 5, 9), mark(1, 3, 3)], 1000), 0, 'first look: nothing to compare with');
  assert.equal(clock.observe([mark(0, 5, 12), mark(1, 3, 3)], 3000), 2000, 'partition 0 lags and did not move for 2 s');
  assert.equal(clock.observe([mark(0, 7, 12), mark(1, 3, 3)], 4000), 0, 'it moved: its clock starts again');
  assert.equal(clock.observe([mark(0, 7, 12), mark(1, 3, 8)], 9000), 5000, 'partition 1 starts lagging: its clock starts at this look');
  assert.equal(clock.observe([mark(0, 12, 12), mark(1, 3, 8)], 10_000), 1000, 'caught up partitions do not count');
  assert.equal(clock.observe([mark(0, 12, 12)], 11_000), 0, 'a partition no longer assigned is forgotten');
  clock.observe([mark(0, 12, 15)], 12_000);
  clock.reset();
  assert.equal(clock.observe([mark(0, 12, 15)], 20_000), 0, 'reset: a fresh consumer is not blamed for the old one');
});

const TOPIC = 'stuck.check';
// A member's group starts from the beginning of the topic: each test has its own group and waits
// only for records of its own.
let kafka: TestKafka;
let client: Kafka;
before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: 2 } });
  client = new Kafka({ clientId: 'stuck', brokers: kafka.brokers, logLevel: logLevel.NOTHING });
});
after(async () => {
  await kafka.stop();
});

async function produce(values: string[]): Promise<void> {
  const producer = client.producer();
  await producer.connect();
  try {
    await producer.send({ topic: TOPIC, acks: -1, messages: values.map((value, i) => ({ value, partition: i % 2 })) });
  } finally {
    await producer.disconnect();
  }
}

/** A member of its own group whose consumers are kept, so the test can stall the first one. */
function member(groupId: string, handle: (values: string[]) => Promise<void>, firstDisconnectHangs = false): { member: KafkaMember; consumers: KafkaConsumer[] } {
  const consumers: KafkaConsumer[] = [];
  const create = (): KafkaConsumer => {
    const c = client.consumer({ groupId, sessionTimeout: 6000, heartbeatInterval: 500, maxWaitTimeInMs: 50 });
    if (firstDisconnectHangs && consumers.length === 0) {
      // As kafkajs's does when a commit keeps retrying against a coordinator that moved: the
      // consumer leaves, but the promise never settles.
      const disconnect = c.disconnect.bind(c);
      c.disconnect = () => {
        void disconnect();
        return new Promise<void>(() => undefined);
      };
    }
    consumers.push(c);
    return c;
  };
  const m = new KafkaMember(
    create,
    () => client.admin(),
    { topic: TOPIC, groupId, concurrency: 2, handle: (batch) => handle(batch.records.map((r) => r.value)) },
    process.env.STUCK_LOG ? createLogger(groupId, 'info') : undefined,
    () => undefined,
    0,
    { afterMs: 3000, everyMs: 500 },
  );
  return { member: m, consumers };
}

for (const hangs of [false, true]) {
  const title = hangs ? ', even when its disconnect never answers' : '';
  test(`a consumer that stops fetching lagging partitions is replaced, and every record is handled${title}`, { timeout: 90_000 }, async () => {
    await replacesStalled(hangs);
  });
}

async function replacesStalled(disconnectHangs: boolean): Promise<void> {
  const handled = new Set<string>();
  const tag = `hang${disconnectHangs}-`;
  const { member: m, consumers } = member(`stuck-stalled-${disconnectHangs}`, async (values) => {
    for (const v of values) handled.add(v);
  }, disconnectHangs);
  await m.start();
  try {
    const first = [`${tag}a0`, `${tag}a1`];
    const later = [0, 1, 2, 3].map((i) => `${tag}b${i}`);
    await produce(first);
    await waitFor('the first records handled', () => first.every((v) => handled.has(v)), 30_000);
    // The consumer in hand stops fetching both partitions and says nothing, as a stuck one does.
    const stuck = consumers[0] as KafkaConsumer;
    stuck.pause([{ topic: TOPIC }]);
    const stalledAt = Date.now();
    await produce(later);
    await waitFor('the records sent after the stall handled', () => later.every((v) => handled.has(v)), 40_000);
    assert.ok(consumers.length >= 2, `a fresh consumer replaced the stuck one (${consumers.length} created)`);
    assert.ok(Date.now() - stalledAt >= 3000, 'replaced after the stall time, not at once');
    assert.equal(await m.lag(), 0, 'nothing left behind');
  } finally {
    await m.stop();
  }
}

test('a consumer busy in its handler, or idle, is not replaced', { timeout: 90_000 }, async () => {
  const handled = new Set<string>();
  let slow = true;
  const { member: m, consumers } = member('stuck-slow', async (values) => {
    // Longer than the stall time inside the handler (shorter than the session: no heartbeat meanwhile).
    if (slow && values.includes('s0')) await new Promise((resolve) => setTimeout(resolve, 4500));
    for (const v of values) handled.add(v);
  });
  await m.start();
  try {
    await produce(['s0', 's1']);
    await waitFor('the slow batch handled', () => handled.has('s0') && handled.has('s1'), 40_000);
    slow = false;
    // Idle and caught up for longer than the stall time.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    await produce(['t0', 't1']);
    await waitFor('later records handled', () => handled.has('t0') && handled.has('t1'), 30_000);
    assert.equal(consumers.length, 1, 'the same consumer throughout');
  } finally {
    await m.stop();
  }
});
