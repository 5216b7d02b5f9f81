import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger } from '@danmaku/observability';

/**
 * Room routes (polls, sends) answer no other origin without an allow-list: `Vary: Origin`, no
 * Allow-Origin, preflights refused; with one, the listed origins.
 */
async function server(corsOrigins?: string[]): Promise<FastifyInstance> {
  const app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'test', corsOrigins });
  app.get('/v1/rooms/:roomId/messages', async () => ({ ok: true }));
  app.get('/v1/route', async () => ({ ok: true }));
  await app.ready();
  return app;
}

const origin = 'https://site.example';
const preflight = { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' };

describe('CORS on room routes', () => {
  test('no allow-list: the same headers as any other non-player route, and no preflight', async () => {
    const app = await server();
    for (const url of ['/v1/rooms/r1/messages', '/v1/route']) {
      const res = await app.inject({ url, headers: { origin } });
      assert.equal(res.statusCode, 200, url);
      assert.equal(res.headers.vary, 'Origin', url);
      assert.equal(res.headers['access-control-allow-origin'], undefined, url);
      assert.equal(res.headers['access-control-expose-headers'], undefined, url);
      const pre = await app.inject({ method: 'OPTIONS', url, headers: preflight });
      assert.equal(pre.statusCode, 404, url);
      assert.equal(pre.json<{ error: { code: string } }>().error.code, 'not_found');
    }
    // Bad input on a room route still carries the header, in the error shape.
    const bad = await app.inject({ url: '/v1/rooms/r1/messages/x', headers: { origin } });
    assert.equal(bad.statusCode, 404);
    await app.close();
  });

  test('an allow-list: room routes answer the listed origins through the plugin', async () => {
    const app = await server([origin]);
    const res = await app.inject({ url: '/v1/rooms/r1/messages', headers: { origin } });
    assert.equal(res.headers['access-control-allow-origin'], origin);
    assert.equal(res.headers['access-control-expose-headers'], 'Retry-After');
    assert.match(String(res.headers.vary), /Origin/);
    const other = await app.inject({ url: '/v1/rooms/r1/messages', headers: { origin: 'https://other.example' } });
    assert.equal(other.headers['access-control-allow-origin'], undefined);
    const pre = await app.inject({ method: 'OPTIONS', url: '/v1/rooms/r1/messages', headers: preflight });
    assert.equal(pre.statusCode, 204);
    assert.equal(pre.headers['access-control-allow-origin'], origin);
    assert.equal(pre.headers['access-control-max-age'], '600');
    await app.close();
  });
});

/** Every CORS header of an answer, and its status: what a browser decides on. */
async function corsView(app: FastifyInstance, method: 'GET' | 'OPTIONS', url: string, headers: Record<string, string>) {
  const res = await app.inject({ method, url, headers });
  const picked: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (name.startsWith('access-control-') || name === 'vary') picked[name] = String(value);
  }
  return { status: res.statusCode, headers: picked, body: res.body };
}

const allowAll = { 'access-control-allow-methods': 'GET, HEAD, POST, PUT, DELETE', 'access-control-allow-headers': 'Content-Type, Authorization', 'access-control-max-age': '600' };

describe('CORS headers pinned for each origin mode (the values @fastify/cors gave with our options)', () => {
  async function playerServer(corsOrigins?: string[]): Promise<FastifyInstance> {
    const app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'test', corsOrigins });
    app.get('/v1/rooms/:roomId/messages', async () => ({ ok: true }));
    app.get('/v1/dplayer/v3/', async () => ({ ok: true }));
    await app.ready();
    return app;
  }

  test('no allow-list: player routes answer any origin, room routes none', async () => {
    const app = await playerServer();
    assert.deepEqual(await corsView(app, 'GET', '/v1/dplayer/v3/?id=1', { origin }), {
      status: 200,
      headers: { vary: 'Origin', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Retry-After' },
      body: '{"ok":true}',
    });
    // '*' does not depend on the caller: also without an Origin header.
    assert.equal((await corsView(app, 'GET', '/v1/dplayer/v3/', {})).headers['access-control-allow-origin'], '*');
    assert.deepEqual(await corsView(app, 'OPTIONS', '/v1/dplayer/v3/', preflight), {
      status: 204,
      headers: { vary: 'Origin', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Retry-After', ...allowAll },
      body: '',
    });
    const strict = await corsView(app, 'OPTIONS', '/v1/dplayer/v3/', { origin });
    assert.equal(strict.status, 400);
    assert.equal(strict.body, 'Invalid Preflight Request');
    assert.deepEqual((await corsView(app, 'GET', '/v1/rooms/r1/messages', { origin })).headers, { vary: 'Origin' });
    const pre = await corsView(app, 'OPTIONS', '/v1/rooms/r1/messages', preflight);
    assert.equal(pre.status, 404);
    assert.deepEqual(pre.headers, { vary: 'Origin' });
    // An unknown path is a 404 with the same header.
    assert.deepEqual((await corsView(app, 'GET', '/v1/nowhere', { origin })).headers, { vary: 'Origin' });
    await app.close();
  });

  test("'*': every route answers any origin, preflights included", async () => {
    const app = await playerServer(['https://a.example', '*']);
    for (const url of ['/v1/rooms/r1/messages', '/v1/dplayer/v3/', '/v1/nowhere']) {
      const res = await corsView(app, 'GET', url, { origin });
      assert.deepEqual(res.headers, { vary: 'Origin', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Retry-After' }, url);
      const pre = await corsView(app, 'OPTIONS', url, preflight);
      assert.equal(pre.status, 204, url);
      assert.deepEqual(pre.headers, { vary: 'Origin', 'access-control-allow-origin': '*', 'access-control-expose-headers': 'Retry-After', ...allowAll }, url);
    }
    await app.close();
  });

  test('a list: the listed origin is echoed, others get no Allow-Origin but the same Vary and Expose', async () => {
    const app = await playerServer([origin, 'https://b.example']);
    for (const url of ['/v1/rooms/r1/messages', '/v1/dplayer/v3/']) {
      assert.deepEqual((await corsView(app, 'GET', url, { origin })).headers, {
        vary: 'Origin',
        'access-control-allow-origin': origin,
        'access-control-expose-headers': 'Retry-After',
      });
      assert.deepEqual((await corsView(app, 'GET', url, { origin: 'https://other.example' })).headers, { vary: 'Origin', 'access-control-expose-headers': 'Retry-After' });
      assert.deepEqual((await corsView(app, 'GET', url, {})).headers, { vary: 'Origin', 'access-control-expose-headers': 'Retry-After' });
      assert.deepEqual(await corsView(app, 'OPTIONS', url, preflight), {
        status: 204,
        headers: { vary: 'Origin', 'access-control-allow-origin': origin, 'access-control-expose-headers': 'Retry-After', ...allowAll },
        body: '',
      });
      // A preflight from an origin not listed is still answered, without Allow-Origin: the browser refuses it.
      const other = await corsView(app, 'OPTIONS', url, { ...preflight, origin: 'https://other.example' });
      assert.equal(other.status, 204);
      assert.equal(other.headers['access-control-allow-origin'], undefined);
      assert.equal((await corsView(app, 'OPTIONS', url, { origin })).status, 400);
    }
    await app.close();
  });
});
