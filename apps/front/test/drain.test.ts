/**
 * A front drained (what SIGTERM does) while sends are in flight over Apache Kafka: from the drain
 * on, new sends and /readyz answer 503 `draining` with Retry-After; the sends already taken in are
 * acknowledged and answered 202; the stop then closes the server and flushes the producer. Every
 * send answered 202 is on the topic afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { KafkaBus, type Consumer } from '@danmaku/bus';
import { createLogger } from '@danmaku/observability';
import { openProcessShared, type ProcessShared } from '@danmaku/process';
import { runRoles, type RunningRoles } from '@danmaku/role';
import { freePort, startKafka, testConfig, tokenFor, uniqueRoom, waitFor, type TestKafka } from '@danmaku/testkit';
import { frontRole } from '../src/role.js';

const TOPIC = 'drain.messages';
const PARTITIONS = 4;

let kafka: TestKafka;
let running: RunningRoles<ProcessShared> | null = null;
let reader: KafkaBus | null = null;
let consumer: Consumer | null = null;

before(async () => {
  kafka = await startKafka({ topics: { [TOPIC]: PARTITIONS } });
});

after(async () => {
  await consumer?.stop().catch(() => undefined);
  await reader?.close().catch(() => undefined);
  await running?.stop().catch(() => undefined);
  await kafka.stop();
});

interface Answer {
  status: number;
  retryAfter: string | null;
  body: { id?: string; error?: { code: string; message: string } };
}

test('a drained front refuses new sends with 503 draining, answers those in flight, and every 202 reaches Kafka', { timeout: 120_000 }, async () => {
  const port = await freePort();
  const config = testConfig({
    port,
    kafkaBrokers: kafka.brokers,
    topic: TOPIC,
    partitions: PARTITIONS,
    cluster: uniqueRoom('drain'),
    rateUserMax: 1_000_000_000,
    rateIpMax: 1_000_000_000,
    // Longer than the broker stays paused below: the sends in flight then are acknowledged, not timed out.
    busTimeoutMs: 20_000,
  });
  running = await runRoles(config, createLogger('front', 'silent'), [frontRole], { name: 'front', embedded: false, open: openProcessShared });
  await running.ready;
  const url = `http://127.0.0.1:${port}`;
  const pipeline = (await running.shared.send()).pipeline;
  const room = uniqueRoom('drain');
  const token = tokenFor('drain-writer');
  let n = 0;
  const send = async (): Promise<Answer> => {
    const res = await fetch(`${url}/v1/rooms/${room}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `m${n}`, clientMsgId: `c${n++}` }),
    });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as Answer['body'] };
  };

  // Sends flowing, then the broker stalls (SIGSTOP) so the next ones stay in flight across the drain.
  const before = await Promise.all(Array.from({ length: 20 }, () => send()));
  assert.deepEqual(before.map((a) => a.status), Array(20).fill(202));
  kafka.pause();
  const inFlight = Array.from({ length: 10 }, () => send());
  await waitFor('the sends to be taken in', () => pipeline.taken() === 10, 10_000, 5);

  let drained = false;
  const draining = running.drain().then(() => (drained = true));
  const ready = await fetch(`${url}/readyz`);
  assert.equal(ready.status, 503);
  assert.equal(((await ready.json()) as Answer['body']).error?.code, 'draining');
  const refused = await send();
  assert.equal(refused.status, 503);
  assert.equal(refused.body.error?.code, 'draining');
  assert.equal(refused.retryAfter, '1');
  assert.equal(drained, false, 'the drain waits for the sends in flight');

  kafka.resume();
  const answered = await Promise.all(inFlight);
  await draining;
  assert.deepEqual(answered.map((a) => a.status), Array(10).fill(202), JSON.stringify(answered.filter((a) => a.status !== 202)));
  await running.stop();
  running = null;

  // Everything acknowledged is on the topic.
  const acked = new Set([...before, ...answered].map((a) => a.body.id as string));
  const seen = new Set<string>();
  reader = new KafkaBus({ brokers: kafka.brokers, clientId: 'drain-reader', partitions: PARTITIONS });
  consumer = await reader.consume({
    topic: TOPIC,
    groupId: `drain-reader-${randomBytes(4).toString('hex')}`,
    concurrency: PARTITIONS,
    handle: async (batch) => {
      for (const r of batch.records) seen.add((JSON.parse(r.value) as { id: string }).id);
    },
  });
  await waitFor('every acknowledged send on the topic', () => [...acked].every((id) => seen.has(id)), 60_000, 50);
  assert.equal(acked.size, 30);
});
