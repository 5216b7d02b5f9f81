/**
 * Backpressure with a bound: a front whose bus stalls (the Kafka broker SIGSTOPped) keeps at most
 * DANMAKU_MAX_IN_FLIGHT sends waiting and answers the rest 503 `overloaded` with Retry-After at
 * once; when the broker continues, the waiting sends are accepted and nothing was lost.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, spawnTs, startKafka, tokenFor, uniqueRoom, waitFor, type TestKafka, type Spawned } from '@danmaku/testkit';

const CAP = 20;
let kafka: TestKafka;
let front: Spawned;
let url: string;

before(async () => {
  kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
  const port = await freePort();
  front = spawnTs('apps/front/src/main.ts', {
    KAFKA_BROKERS: kafka.brokers.join(','),
    PORT: String(port),
    LOG_LEVEL: 'info',
    DANMAKU_MAX_IN_FLIGHT: String(CAP),
    // Longer than the stall: the waiting sends must be the ones accepted afterwards.
    DANMAKU_BUS_TIMEOUT_MS: '60000',
    DANMAKU_RATE_USER_MAX: '100000000',
  });
  await front.waitForOutput(/front listening/);
  url = `http://127.0.0.1:${port}`;
});
after(async () => {
  kafka.resume();
  await front.kill();
  await kafka.stop();
});

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return line ? Number(line.split(' ').pop()) : 0;
}

test('a stalled bus: at most the cap waits, the rest get 503 overloaded with Retry-After, the waiting ones land', { timeout: 120_000 }, async () => {
  const room = uniqueRoom('bp');
  const token = tokenFor('bp-writer');
  const send = async (i: number): Promise<{ status: number; code?: string; retryAfter: string | null }> => {
    const res = await fetch(`${url}/v1/rooms/${room}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `bp ${i}`, clientMsgId: `bp-${i}` }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code, retryAfter: res.headers.get('retry-after') };
  };
  // The producer is connected before the stall.
  assert.equal((await send(-1)).status, 202);

  kafka.pause();
  const total = 200;
  const answers: { status: number; code?: string; retryAfter: string | null }[] = [];
  const pending = Array.from({ length: total }, (_, i) => send(i).then((a) => answers.push(a)));
  // Everything past the cap is answered while the broker is still stopped.
  await waitFor('the sends past the cap to be answered', () => answers.length >= total - CAP, 30_000);
  assert.equal(await metric('danmaku_ingest_in_flight'), CAP);
  assert.equal(answers.length, total - CAP, 'the sends in flight are still waiting');
  for (const a of answers) {
    assert.equal(a.status, 503);
    assert.equal(a.code, 'overloaded');
    assert.equal(a.retryAfter, '1');
  }
  assert.ok((await metric('danmaku_ingest_shed_total')) >= total - CAP);

  kafka.resume();
  await Promise.all(pending);
  const accepted = answers.filter((a) => a.status === 202).length;
  assert.equal(accepted, CAP, JSON.stringify(answers.filter((a) => a.status !== 202 && a.code !== 'overloaded')));
  assert.equal(await metric('danmaku_ingest_in_flight'), 0);
  // And the front takes sends again.
  assert.equal((await send(1000)).status, 202);
});
