import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { answerEarlyFor, createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger } from '@danmaku/observability';

const READY = Buffer.from('{"ready":true}');
const TYPE = 'application/json; charset=utf-8';

/** A server whose route sends the same bytes as the early answer for /v1/rooms/hot/messages. */
async function server(t: TestContext, corsOrigins?: string[]): Promise<{ app: FastifyInstance; url: string; routed: () => number }> {
  const app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'test', corsOrigins });
  let routed = 0;
  app.addHook('onRequest', (_request, _reply, done) => {
    routed++;
    done();
  });
  app.get('/v1/rooms/:roomId/messages', async (_request, reply) => reply.type(TYPE).send(READY));
  answerEarlyFor(app, (url) => (url.startsWith('/v1/rooms/hot/messages') ? { contentType: TYPE, body: READY } : undefined));
  t.after(() => app.close());
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  return { app, url: `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`, routed: () => routed };
}

/** Status, headers (without the per-moment Date) and body of one request over a real socket. */
async function get(url: string, init: RequestInit = {}): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  const res = await fetch(url, init);
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (name !== 'date') headers[name] = value;
  });
  return { status: res.status, headers, body: await res.text() };
}

describe('early answers', () => {
  test('a known GET is answered before routing with the headers the route path gives; anything else is routed', async (t) => {
    const { app, url, routed } = await server(t);
    // The server comes from createHttpServer's factory, with the settings Fastify gives its own.
    assert.equal(app.server.keepAliveTimeout, 72_000);
    assert.equal(app.server.requestTimeout, 0);
    const origin = { headers: { origin: 'https://site.example' } };
    const early = await get(`${url}/v1/rooms/hot/messages?cursor=abc`, origin);
    assert.equal(routed(), 0, 'no hook ran: the answer went out before Fastify');
    const viaRoute = await get(`${url}/v1/rooms/cold/messages?cursor=abc`, origin);
    assert.equal(routed(), 1);
    assert.deepEqual(early, viaRoute);
    assert.equal(early.status, 200);
    assert.equal(early.body, READY.toString());
    assert.equal(early.headers.vary, 'Origin');
    assert.equal(early.headers['content-type'], TYPE);
    assert.equal(early.headers['content-length'], String(READY.length));
    assert.equal(early.headers['access-control-allow-origin'], undefined);

    // Other methods take the ordinary path (HEAD gets Fastify's head-only answer).
    const head = await fetch(`${url}/v1/rooms/hot/messages`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(routed(), 2);
    const post = await fetch(`${url}/v1/rooms/hot/messages`, { method: 'POST' });
    assert.equal(post.status, 404);
    assert.equal(routed(), 3);
  });

  test('the CORS headers follow the allow-list, as on the routed path', async (t) => {
    const { url, routed } = await server(t, ['https://site.example']);
    for (const origin of ['https://site.example', 'https://other.example']) {
      const early = await get(`${url}/v1/rooms/hot/messages`, { headers: { origin } });
      const viaRoute = await get(`${url}/v1/rooms/cold/messages`, { headers: { origin } });
      assert.deepEqual(early, viaRoute, origin);
    }
    assert.equal(routed(), 2);
    const listed = await get(`${url}/v1/rooms/hot/messages`, { headers: { origin: 'https://site.example' } });
    assert.equal(listed.headers['access-control-allow-origin'], 'https://site.example');
    assert.equal(listed.headers['access-control-expose-headers'], 'Retry-After');
  });

  test('an HTTP/1.1 request without Host gets the routed 400, not an early answer', async (t) => {
    const { url } = await server(t);
    const { port } = new URL(url);
    const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/rooms/hot/messages', setHost: false, agent: false }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(status, 400);
    assert.equal((JSON.parse(body) as { error: { code: string } }).error.code, 'bad_request');
  });
});
