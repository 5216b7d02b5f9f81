import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAuth } from '@danmaku/auth';
import { authPlugin, createHttpServer, restricted, type FastifyInstance } from '@danmaku/http';
import { roomParamsSchema } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import { testConfig, tokenFor } from '@danmaku/testkit';

const auth = createAuth(testConfig().jwtSecret);
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const body = { type: 'object', required: ['n'], additionalProperties: false, properties: { n: { type: 'integer' } } } as const;

describe('who may call what: the auth plugin and restricted contexts', () => {
  let app: FastifyInstance;
  before(async () => {
    app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'test' });
    await app.register(authPlugin, { auth });
    // A second registration (a plugin that brings its own) changes nothing.
    await app.register(authPlugin, { auth });
    app.get('/open', async (request) => ({ who: request.principal?.id ?? null }));
    app.get('/ignores-token', async () => ({ ok: true }));
    await app.register(
      restricted({ role: 'user' }, (viewer) => {
        viewer.post<{ Body: { n: number } }>('/user', { schema: { body } }, async (request) => ({ who: request.user.id, n: request.body.n }));
      }),
    );
    await app.register(
      restricted({ role: 'moderator' }, (room) => {
        room.post<{ Params: { roomId: string } }>('/rooms/:roomId/act', { schema: { params: roomParamsSchema } }, async (request) => ({ who: request.user.id }));
      }),
    );
    await app.register(
      restricted({ role: 'admin', denied: 'Admins only here.', missing: 'Bring an admin token.' }, (admin) => {
        admin.get('/admin', async (request) => ({ who: request.user.id }));
      }),
    );
    await app.ready();
  });
  after(async () => {
    await app.close();
  });

  const call = async (method: 'GET' | 'POST', url: string, headers: Record<string, string> = {}, payload?: object) => {
    const res = await app.inject({ method, url, headers, ...(payload ? { payload } : {}) });
    return { status: res.statusCode, body: res.json() as { who?: string | null; error?: { code: string; message: string } } };
  };

  test('open routes read the caller when there is one and never look at a token they do not need', async () => {
    assert.deepEqual((await call('GET', '/open')).body, { who: null });
    assert.deepEqual((await call('GET', '/open', bearer(tokenFor('ann')))).body, { who: 'ann' });
    assert.equal((await call('GET', '/open', bearer('garbage'))).body.error?.code, 'invalid_token');
    assert.equal((await call('GET', '/ignores-token', bearer('garbage'))).status, 200);
  });

  test('user routes: 401 missing_token or invalid_token, after a bad body is already a 400', async () => {
    const missing = await call('POST', '/user', {}, { n: 1 });
    assert.equal(missing.status, 401);
    assert.deepEqual(missing.body, { error: { code: 'missing_token', message: 'This needs a token: send "Authorization: Bearer TOKEN".' } });
    assert.equal((await call('POST', '/user', bearer('x.y.z'), { n: 1 })).body.error?.code, 'invalid_token');
    assert.equal((await call('POST', '/user', {}, { n: 'one' })).status, 400, 'validation first');
    assert.deepEqual((await call('POST', '/user', bearer(tokenFor('bob')), { n: 2 })).body, { who: 'bob', n: 2 });
  });

  test("moderator routes: the room's streamer and admins pass, other streamers and viewers get 403", async () => {
    assert.equal((await call('POST', '/rooms/r1/act', bearer(tokenFor('s1', 'streamer', ['r1'])))).body.who, 's1');
    assert.equal((await call('POST', '/rooms/r1/act', bearer(tokenFor('op', 'admin')))).body.who, 'op');
    const other = await call('POST', '/rooms/r1/act', bearer(tokenFor('s2', 'streamer', ['r2'])));
    assert.equal(other.status, 403);
    assert.deepEqual(other.body.error, { code: 'forbidden', message: 'Only the streamer of room r1 or an admin may do this.' });
    assert.equal((await call('POST', '/rooms/r1/act', bearer(tokenFor('v')))).status, 403);
    assert.equal((await call('POST', '/rooms/r1/act')).status, 401);
    assert.equal((await call('POST', '/rooms/bad!room/act')).status, 400, 'validation first');
  });

  test('admin routes, with their own wording', async () => {
    assert.deepEqual((await call('GET', '/admin')).body.error, { code: 'missing_token', message: 'Bring an admin token.' });
    assert.deepEqual((await call('GET', '/admin', bearer(tokenFor('s', 'streamer', ['r1'])))).body.error, { code: 'forbidden', message: 'Admins only here.' });
    assert.equal((await call('GET', '/admin', bearer(tokenFor('op', 'admin')))).body.who, 'op');
  });
});
