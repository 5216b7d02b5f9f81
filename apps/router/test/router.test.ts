/**
 * The routing service: Meipai's gray / black / white rules, endpoints = live connectors by load
 * (dead ones drop out within seconds), and the admin endpoint that changes it all at run time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAuth } from '@danmaku/auth';
import { createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger } from '@danmaku/observability';
import { NODE_TTL_MS, registerConnector } from '@danmaku/push';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { startRedis, testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { Switchboard } from '@danmaku/switches';
import { DEFAULT_ROUTE_CONFIG, decideRoute, grayBucket, routerRoutes, versionMatches, type RouteConfig } from '../src/index.js';

/** The answer without its Bilibili endpoints (asserted on their own). */
function withoutBilibili(answer: unknown): unknown {
  const copy = { ...(answer as Record<string, unknown>) };
  delete copy.bilibili;
  return copy;
}

describe('decideRoute', () => {
  const config = (patch: Partial<RouteConfig>): RouteConfig => ({ ...structuredClone(DEFAULT_ROUTE_CONFIG), ...patch });
  const eps = ['http://c1'];

  it('blacklist beats whitelist, whitelist beats off, forced polling and the gray', () => {
    const lists = { uids: ['u1'], deviceIds: ['d1'], versions: ['<2.0.0'] };
    const both = config({ blacklist: lists, whitelist: { uids: ['u1', 'u2'], deviceIds: ['d2'], versions: ['3.1.*'] } });
    assert.equal(decideRoute(both, { uid: 'u1' }, eps, false).reason, 'blacklist');
    assert.equal(decideRoute(both, { uid: 'x', deviceId: 'd1' }, eps, false).reason, 'blacklist');
    assert.equal(decideRoute(both, { uid: 'x', version: '1.9.9' }, eps, false).reason, 'blacklist');
    const off = config({ enabled: false, percent: 0, whitelist: { uids: ['u2'], deviceIds: ['d2'], versions: ['3.1.*'] } });
    for (const q of [{ uid: 'u2' }, { deviceId: 'd2' }, { uid: 'x', version: '3.1.4' }]) {
      assert.deepEqual(decideRoute(off, q, eps, true), { mode: 'long', endpoints: eps, pollIntervalMs: 2000, reason: 'whitelist' });
    }
    assert.equal(decideRoute(off, { uid: 'x' }, eps, false).reason, 'disabled');
    assert.equal(decideRoute(config({}), { uid: 'x' }, eps, true).reason, 'forced_polling');
    assert.equal(decideRoute(config({}), { uid: 'u2' }, [], false).reason, 'no_connectors');
  });

  it('gray release is stable per client and close to the percentage', () => {
    const gray = config({ percent: 30 });
    let long = 0;
    for (let i = 0; i < 2000; i++) {
      const q = { uid: `user-${i}` };
      const first = decideRoute(gray, q, eps, false).mode;
      assert.equal(decideRoute(gray, q, eps, false).mode, first, 'same answer every time');
      if (first === 'long') long++;
    }
    assert.ok(long > 2000 * 0.25 && long < 2000 * 0.35, `about 30 % long, got ${long}`);
    // Raising the percentage only adds clients: nobody already long is sent back to polling.
    for (let i = 0; i < 200; i++) {
      const q = { deviceId: `dev-${i}` };
      if (decideRoute(gray, q, eps, false).mode === 'long') assert.equal(decideRoute(config({ percent: 60 }), q, eps, false).mode, 'long');
    }
    assert.equal(grayBucket({ uid: 'a', deviceId: 'b' }), grayBucket({ uid: 'a', deviceId: 'other' }), 'uid first');
  });

  it('matches versions exactly, by prefix and by comparison', () => {
    assert.ok(versionMatches('2.3.1', '2.3.1'));
    assert.ok(!versionMatches('2.3.1', '2.3.10'));
    assert.ok(versionMatches('2.3.*', '2.3.10'));
    assert.ok(versionMatches('<2.10.0', '2.9.5'));
    assert.ok(!versionMatches('<2.10.0', '2.10.0'));
    assert.ok(versionMatches('>=3', '3.0.1'));
  });
});

describe('GET /v1/route and the admin endpoint', () => {
  const cluster = uniqueRoom('cluster');
  const config = testConfig({ cluster });
  let app: FastifyInstance;
  let redis: Redis;

  before(async () => {
    redis = createRedis(config.redisUrl);
    await waitReady(redis);
    app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'router' });
    await app.register(routerRoutes, { redis, cluster, auth: createAuth(config.jwtSecret), cacheMs: 50 });
    await app.ready();
  });
  after(async () => {
    await app.close();
    redis.disconnect();
  });

  const route = async (query: string) => {
    const res = await app.inject({ method: 'GET', url: `/v1/route?${query}` });
    return { status: res.statusCode, body: res.json() as { mode: string; endpoints: string[]; pollIntervalMs: number; reason: string; error?: { code: string } } };
  };
  const put = (body: unknown, token = tokenFor('ops', 'admin')) =>
    app.inject({ method: 'PUT', url: '/v1/admin/route-config', headers: { authorization: `Bearer ${token}` }, payload: body as object });
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  it('hands out live connectors least loaded first; dead ones drop out', async () => {
    assert.equal((await route('uid=a')).body.reason, 'no_connectors');
    const now = Date.now();
    await registerConnector(redis, cluster, { id: 'busy', url: 'http://busy', sockets: 900, rooms: 1, ts: now, bilibili: { ws: 'ws://busy/sub', tcp: 'busy:2243' } });
    await registerConnector(redis, cluster, { id: 'idle', url: 'http://idle', sockets: 10, rooms: 1, ts: now, bilibili: { ws: 'ws://idle/sub', tcp: null } });
    await registerConnector(redis, cluster, { id: 'dead', url: 'http://dead', sockets: 0, rooms: 0, ts: now - NODE_TTL_MS - 1 });
    await sleep(60);
    const { body } = await route('uid=a&deviceId=d&version=1.0.0');
    assert.deepEqual(body, {
      mode: 'long',
      endpoints: ['http://idle', 'http://busy'],
      pollIntervalMs: 2000,
      reason: 'gray',
      // Both transports of the same connectors, in the same order; a node with TCP off lists none.
      bilibili: { ws: ['ws://idle/sub', 'ws://busy/sub'], tcp: ['busy:2243'] },
    });
  });

  it('changes config at run time with an admin token, and validates it', async () => {
    assert.equal((await put({ percent: 0 }, tokenFor('joe'))).statusCode, 403);
    assert.equal((await app.inject({ method: 'PUT', url: '/v1/admin/route-config', payload: { percent: 0 } })).statusCode, 401);
    const invalid = await put({ percent: 101 });
    assert.equal(invalid.statusCode, 400);
    assert.equal((invalid.json() as { error: { code: string } }).error.code, 'invalid_request');
    assert.equal((await put({ nonsense: true })).statusCode, 400);

    assert.equal((await put({ percent: 0, pollIntervalMs: 3000, whitelist: { uids: ['vip'] } })).statusCode, 200);
    await sleep(60);
    assert.deepEqual(withoutBilibili((await route('uid=someone')).body), { mode: 'short', endpoints: [], pollIntervalMs: 3000, reason: 'outside_gray' });
    assert.equal((await route('uid=vip')).body.reason, 'whitelist');
    assert.equal((await put({ enabled: false })).statusCode, 200);
    await sleep(60);
    assert.equal((await route('uid=vip')).body.mode, 'long', 'whitelist even when off');
    assert.equal((await route('uid=someone')).body.reason, 'disabled');

    const shown = await app.inject({ method: 'GET', url: '/v1/admin/route-config', headers: { authorization: `Bearer ${tokenFor('ops', 'admin')}` } });
    const stored = shown.json() as { config: RouteConfig };
    assert.equal(stored.config.enabled, false);
    assert.deepEqual(stored.config.whitelist.uids, ['vip']);
    assert.equal((await route('uid=' + 'x'.repeat(65))).status, 400);
  });
});

describe('the degrade switch "force polling"', () => {
  it('sends every client but the whitelist to polling, and raises the poll interval', async () => {
    // A private Redis: the switches are global and other tests share the usual one.
    const redis = await startRedis();
    const client = createRedis(redis.url);
    await waitReady(client);
    const switches = await new Switchboard({ redis: client, refreshMs: 50 }).start();
    const cluster = uniqueRoom('cluster');
    const app = createHttpServer({ logger: createLogger('test', 'silent'), app: 'router' });
    await app.register(routerRoutes, {
      redis: client,
      cluster,
      auth: createAuth(testConfig().jwtSecret),
      forcePolling: () => switches.forcePolling(),
      minPollIntervalMs: () => switches.get().pollIntervalMs,
      cacheMs: 10,
    });
    try {
      await registerConnector(client, cluster, { id: 'n1', url: 'http://n1', sockets: 0, rooms: 0, ts: Date.now() });
      await client.set(`dm:c:${cluster}:route`, JSON.stringify({ ...DEFAULT_ROUTE_CONFIG, whitelist: { uids: ['vip'], deviceIds: [], versions: [] } }));
      const route = async (q: string) => (await app.inject({ method: 'GET', url: `/v1/route?${q}` })).json() as { mode: string; reason: string; pollIntervalMs: number };
      assert.equal((await route('uid=a')).mode, 'long');
      await switches.set({ forcePolling: true, pollIntervalMs: 5000 });
      await new Promise((r) => setTimeout(r, 30));
      assert.deepEqual(withoutBilibili(await route('uid=a')), { mode: 'short', endpoints: [], pollIntervalMs: 5000, reason: 'forced_polling' });
      assert.equal((await route('uid=vip')).mode, 'long');
    } finally {
      switches.stop();
      await app.close();
      client.disconnect();
      await redis.stop();
    }
  });
});

