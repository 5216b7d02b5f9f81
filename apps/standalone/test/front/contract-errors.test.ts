import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuth } from '@danmaku/auth';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { freePort, spawnTs, startKafka, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';

// Rate limits are another test's subject; here they would only get in the way.
const config = testConfig({ rateUserMax: 1e6, rateIpMax: 1e6 });
let system: Standalone;
const token = tokenFor('err-user');
const room = uniqueRoom('err');

interface ErrorBody {
  error: { code: string; message: string };
}

async function send(body: string, headers: Record<string, string> = {}, path = `/v1/rooms/${room}/messages`): Promise<{ status: number; body: ErrorBody }> {
  const res = await fetch(`${system.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, body: (await res.json()) as ErrorBody };
}

function assertError(result: { status: number; body: ErrorBody }, status: number, code: string, mentions?: RegExp): void {
  assert.equal(result.status, status, JSON.stringify(result.body));
  assert.equal(result.body.error.code, code);
  assert.ok(result.body.error.message.length > 10, 'the message says something');
  if (mentions) assert.match(result.body.error.message, mentions);
}

before(async () => {
  system = await startStandalone(config, createLogger('test', 'silent'));
});
after(async () => {
  await system.stop();
});

describe('bad input gets the documented 4xx and a clear message', () => {
  test('malformed JSON, empty body, wrong content type', async () => {
    assertError(await send('{"type":"comm'), 400, 'malformed_json');
    assertError(await send(''), 400, 'malformed_json');
    assertError(await send('type=comment', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type');
  });

  test('wrong types, unknown type, unknown fields', async () => {
    assertError(await send(JSON.stringify({ type: 'comment', content: 123 })), 400, 'invalid_request', /content.*string/);
    assertError(await send(JSON.stringify({ type: 'gift', giftId: 'rose', count: '3' })), 400, 'invalid_request', /count.*integer/);
    assertError(await send(JSON.stringify({ type: 'shout', content: 'hi' })), 400, 'invalid_request', /type.*one of/);
    assertError(await send(JSON.stringify({ type: 'comment', content: 'hi', colour: 'red' })), 400, 'invalid_request', /Unknown field "colour"/);
    assertError(await send(JSON.stringify([1, 2])), 400, 'invalid_request');
  });

  test('empty, blank and over-long content; gift without giftId', async () => {
    assertError(await send(JSON.stringify({ type: 'comment', content: '' })), 400, 'invalid_request', /empty/);
    assertError(await send(JSON.stringify({ type: 'comment', content: '   ' })), 400, 'invalid_request', /content/);
    assertError(await send(JSON.stringify({ type: 'comment' })), 400, 'invalid_request', /content/);
    assertError(await send(JSON.stringify({ type: 'comment', content: 'x'.repeat(101) })), 400, 'invalid_request', /at most 100/);
    assertError(await send(JSON.stringify({ type: 'gift' })), 400, 'invalid_request', /giftId/);
    // 100 characters (not bytes) is fine, even in a script with multi-byte characters.
    assert.equal((await send(JSON.stringify({ type: 'comment', content: '弹'.repeat(100) }))).status, 202);
  });

  test('huge bodies are refused with 413', async () => {
    assertError(await send(JSON.stringify({ type: 'comment', content: 'x'.repeat(200_000) })), 413, 'payload_too_large');
  });

  test('missing, malformed, forged and expired tokens', async () => {
    const body = JSON.stringify({ type: 'comment', content: 'hi' });
    const res = await fetch(`${system.url}/v1/rooms/${room}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as ErrorBody).error.code, 'missing_token');
    assertError(await send(body, { authorization: 'Basic abc' }), 401, 'invalid_token');
    assertError(await send(body, { authorization: `Bearer ${createAuth('another-secret').sign({ sub: 'u', name: 'U', role: 'viewer' })}` }), 401, 'invalid_token');
    const expired = createAuth(config.jwtSecret).sign({ sub: 'u', name: 'U', role: 'viewer' }, -60);
    assertError(await send(body, { authorization: `Bearer ${expired}` }), 401, 'token_expired');
  });

  test('bad room ids, cursors, types and limits on reads; unknown routes', async () => {
    const get = async (path: string) => {
      const res = await fetch(`${system.url}${path}`);
      return { status: res.status, body: (await res.json()) as ErrorBody };
    };
    assertError(await send(JSON.stringify({ type: 'comment', content: 'hi' }), {}, '/v1/rooms/bad:room/messages'), 400, 'invalid_request');
    assertError(await get(`/v1/rooms/${room}/messages?cursor=%%%`), 400, 'invalid_cursor');
    assertError(await get(`/v1/rooms/${room}/messages?cursor=${Buffer.from('comment.x').toString('base64url')}`), 400, 'invalid_cursor');
    assertError(await get(`/v1/rooms/${room}/messages?types=comment,shout`), 400, 'invalid_request', /shout/);
    assertError(await get(`/v1/rooms/${room}/messages?limit=0`), 400, 'invalid_request');
    assertError(await get(`/v1/rooms/${room}/messages?limit=abc`), 400, 'invalid_request');
    assertError(await get(`/v1/rooms/${room}/users?limit=100000`), 400, 'invalid_request');
    assertError(await get('/v1/nothing/here'), 404, 'not_found');
    // After all of that the server still works.
    assert.equal((await fetch(`${system.url}/healthz`)).status, 200);
    assert.equal((await send(JSON.stringify({ type: 'comment', content: 'still here' }))).status, 202);
  });

  test('a retried send with the same clientMsgId is one message with one id', async () => {
    const r = uniqueRoom('idem');
    const body = JSON.stringify({ type: 'comment', content: 'once', clientMsgId: 'c-1' });
    const a = await fetch(`${system.url}/v1/rooms/${r}/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    const b = await fetch(`${system.url}/v1/rooms/${r}/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
    const [ida, idb] = [((await a.json()) as { id: string }).id, ((await b.json()) as { id: string }).id];
    assert.equal(ida, idb);
    // A sentinel after them: a second copy would be stored before it.
    const sentinel = await fetch(`${system.url}/v1/rooms/${r}/messages`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'comment', content: 'sentinel' }) });
    const sentinelId = ((await sentinel.json()) as { id: string }).id;
    const ids = await waitFor('the sentinel stored', async () => {
      const page = (await (await fetch(`${system.url}/v1/rooms/${r}/messages?types=comment`)).json()) as { messages: { id: string }[] };
      const got = page.messages.map((m) => m.id);
      return got.includes(sentinelId) ? got : null;
    });
    assert.deepEqual(ids, [ida, sentinelId]);
  });
});

describe('a dependency that is down gets a fast 503, and nothing accepted is lost', () => {
  let redis: TestRedis;

  test('Redis stopped: polls answer 503 within a second; accepted sends appear once Redis is back', async () => {
    redis = await startRedis();
    const own = await startStandalone(testConfig({ redisUrl: redis.url, rateUserMax: 1e6, rateIpMax: 1e6 }), createLogger('test', 'silent'));
    const r = uniqueRoom('down');
    const post = (content: string) =>
      fetch(`${own.url}/v1/rooms/${r}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content }),
      });
    try {
      assert.equal((await post('before')).status, 202);
      const port = redis.port;
      await redis.stop();

      const started = Date.now();
      const poll = await fetch(`${own.url}/v1/rooms/${r}/messages`);
      const elapsed = Date.now() - started;
      assert.equal(poll.status, 503);
      assert.ok(poll.headers.get('retry-after'), 'Retry-After is set');
      assert.equal(((await poll.json()) as ErrorBody).error.code, 'redis_unavailable');
      assert.ok(elapsed < 1000, `503 took ${elapsed} ms`);
      const ready = await fetch(`${own.url}/readyz`);
      assert.equal(ready.status, 503);

      // Sends while Redis is down are either refused fast (a check needs Redis) or accepted;
      // whatever was accepted must show up once Redis is back.
      const acceptedWhileDown: string[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = Date.now();
        const res = await post(`during ${i}`);
        assert.ok(Date.now() - t0 < 2000, 'send answered fast');
        assert.ok(res.status === 202 || res.status === 503, `send answered ${res.status}`);
        if (res.status === 202) acceptedWhileDown.push(((await res.json()) as { id: string }).id);
      }

      redis = await startRedis({ port });
      assert.equal((await post('after')).status, 202);
      const page = await waitFor('the messages after Redis came back', async () => {
        const res = await fetch(`${own.url}/v1/rooms/${r}/messages?types=comment`);
        if (res.status !== 200) return null;
        const body = (await res.json()) as { messages: { id: string; content: string }[] };
        return body.messages.some((m) => m.content === 'after') ? body : null;
      }, 15_000);
      const seen = new Set(page.messages.map((m) => m.id));
      for (const id of acceptedWhileDown) assert.ok(seen.has(id), `message ${id} accepted while Redis was down was lost`);
    } finally {
      await own.stop();
      await redis.stop();
    }
  });

  test('Kafka down: sends answer 503 quickly with Retry-After; the front keeps running', async () => {
    const kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
    const port = await freePort();
    const front = spawnTs('apps/front/src/main.ts', { KAFKA_BROKERS: kafka.brokers.join(','), PORT: String(port), LOG_LEVEL: 'info', DANMAKU_BUS_TIMEOUT_MS: '1500' });
    try {
      await front.waitForOutput(/front listening/);
      const url = `http://127.0.0.1:${port}/v1/rooms/${uniqueRoom('kdown')}/messages`;
      const kafkaToken = tokenFor('kafka-down-user');
      const post = () =>
        fetch(url, { method: 'POST', headers: { authorization: `Bearer ${kafkaToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ type: 'comment', content: 'hi' }) });
      assert.equal((await post()).status, 202);
      await kafka.stop();
      const started = Date.now();
      const res = await post();
      const elapsed = Date.now() - started;
      assert.equal(res.status, 503);
      assert.equal(((await res.json()) as ErrorBody).error.code, 'bus_unavailable');
      assert.ok(res.headers.get('retry-after'));
      assert.ok(elapsed < 3000, `503 took ${elapsed} ms`);
      assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200);
      assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 503);
    } finally {
      await front.kill();
      await kafka.stop();
    }
  });
});
