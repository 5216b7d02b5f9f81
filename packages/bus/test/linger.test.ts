import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { KafkaBus } from '@danmaku/bus';
import { sleep, startKafka, type TestKafka } from '@danmaku/testkit';

/**
 * The producer's linger: a send that finds nothing in flight waits for company, and what arrives
 * meanwhile goes in the same request (so it is acknowledged at the same moment).
 */
const TOPIC = 'linger-test';
let kafka: TestKafka;
let bus: KafkaBus;

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: 1 } });
  bus = new KafkaBus({ brokers: kafka.brokers, clientId: 'linger-test', partitions: 1, produceTimeoutMs: 10_000, lingerMs: 400, lingerFullSends: 4 });
  await bus.connect();
});
after(async () => {
  await bus?.close();
  await kafka?.stop();
});

const record = (value: string) => [{ key: 'k', value, partition: 0 }];

test('sends within the linger share one request; the first waits the linger out', async () => {
  // Warm: the topic is known and the producer connected before the measured sends.
  await bus.produce(TOPIC, record('warm'));
  // A send arriving while a request is still finishing joins the next request without lingering.
  await sleep(50);
  const started = performance.now();
  const first = bus.produce(TOPIC, record('a')).then(() => performance.now());
  await sleep(150);
  const second = bus.produce(TOPIC, record('b')).then(() => performance.now());
  const [firstAt, secondAt] = await Promise.all([first, second]);
  assert.ok(firstAt - started >= 390, `the first send waited ${Math.round(firstAt - started)} ms, not the linger`);
  assert.ok(Math.abs(secondAt - firstAt) < 50, `acknowledged ${Math.round(secondAt - firstAt)} ms apart: not one request`);
});

test('a full batch does not wait the linger out: clients that wait for each answer are not held back every round', async () => {
  await bus.produce(TOPIC, record('warm2'));
  await sleep(50);
  for (let round = 0; round < 3; round++) {
    const started = performance.now();
    const acked = await Promise.all(['a', 'b', 'c', 'd'].map((v) => bus.produce(TOPIC, record(`${v}${round}`)).then(() => performance.now())));
    const slowest = Math.max(...acked) - started;
    assert.ok(slowest < 300, `round ${round}: four sends (a full batch) acknowledged after ${Math.round(slowest)} ms; the linger is 400`);
  }
  // Three are not a full batch: they wait the linger out.
  const started = performance.now();
  await Promise.all(['x', 'y', 'z'].map((v) => bus.produce(TOPIC, record(v))));
  assert.ok(performance.now() - started >= 390, 'three sends waited for company');
});
