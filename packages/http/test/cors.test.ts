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
