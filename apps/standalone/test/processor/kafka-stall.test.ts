import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from '@danmaku/protocol';
import { freePort, readRoom, spawnTs, startKafka, tokenFor, uniqueRoom, waitFor, type TestKafka, type Spawned } from '@danmaku/testkit';

/**
 * Front and processor as processes over an Apache Kafka broker; the broker stalls (SIGSTOP) for 10 s and
 * comes back. Sends fail fast while it is gone, recover after, and everything acknowledged with
 * 202 is stored exactly once.
 */
const ENV = { LOG_LEVEL: 'warn', DANMAKU_RATE_USER_MAX: '100000000', DANMAKU_RATE_IP_MAX: '100000000' };
const STALL_MS = 10_000;

let kafka: TestKafka;
let front: Spawned;
let processor: Spawned;
let frontUrl: string;

before(async () => {
  kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
  const brokers = kafka.brokers.join(',');
  const port = await freePort();
  front = spawnTs('apps/front/src/main.ts', { ...ENV, LOG_LEVEL: 'info', KAFKA_BROKERS: brokers, PORT: String(port) });
  processor = spawnTs('apps/processor/src/main.ts', { ...ENV, LOG_LEVEL: 'info', KAFKA_BROKERS: brokers, PROCESSOR_PORT: String(await freePort()) });
  await front.waitForOutput(/front listening/);
  await processor.waitForOutput(/processor consuming/);
  frontUrl = `http://127.0.0.1:${port}`;
});

after(async () => {
  await processor?.kill();
  await front?.kill();
  await kafka?.stop();
});

test('a 10 s broker stall: fast 503s meanwhile, then every 202 stored once', { timeout: 90_000 }, async () => {
  const room = uniqueRoom('stall');
  const token = tokenFor('stall-writer');
  const accepted: string[] = [];
  let i = 0;
  const send = async (): Promise<number> => {
    const res = await fetch(`${frontUrl}/v1/rooms/${room}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `m${i++}` }),
    });
    const body = (await res.json()) as { id?: string; error?: { code: string } };
    if (res.status === 202 && body.id) accepted.push(body.id);
    else assert.equal(res.status, 503, JSON.stringify(body));
    return res.status;
  };

  for (let n = 0; n < 20; n++) assert.equal(await send(), 202);

  kafka.pause();
  const stalledAt = Date.now();
  let refused = 0;
  while (Date.now() - stalledAt < STALL_MS) {
    const t = Date.now();
    if ((await send()) === 503) {
      refused++;
      assert.ok(Date.now() - t < 5000, `a stalled send took ${Date.now() - t} ms`);
    }
  }
  kafka.resume();
  assert.ok(refused > 0, 'sends are refused while the broker is stalled');

  await waitFor('a send accepted after the broker resumed', async () => (await send()) === 202, 30_000, 200);
  for (let n = 0; n < 20; n++) await waitFor('send after resume', async () => (await send()) === 202, 10_000, 100);

  const stored: Message[] = [];
  await readRoom(frontUrl, room, { into: stored, until: (read) => accepted.every((id) => read.some((m) => m.id === id)), timeoutMs: 45_000 }).catch((err: unknown) => {
    const missing = accepted.filter((id) => !stored.some((m) => m.id === id));
    process.stdout.write(`# stored ${stored.length}, missing ${missing.length} of ${accepted.length}\n# processor:\n${processor.output().slice(-6000)}\n`);
    throw err;
  });
  const ids = stored.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, 'a message was stored twice');
  for (const id of accepted) assert.ok(ids.includes(id), `acknowledged ${id} not stored`);
  const rejoined = /joining the group again/.test(processor.output());
  process.stdout.write(`# ${accepted.length} accepted, ${refused} refused (503) while stalled; processor consumer replaced after a crash: ${rejoined}\n`);
});
