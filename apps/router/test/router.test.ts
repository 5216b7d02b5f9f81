/**
 * The routing service: Meipai's gray / black / white rules, endpoints = live connectors by load
 * (dead ones drop out within seconds), and the admin endpoint that changes it all at run time.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createAuth } from '@danmaku/auth';
import { createHttpServer, type FastifyInstance } from '@danmaku/http';
import { createLogger } from '@danmaku/observability';
import { NODE_TTL_MS, registerConnector, type ConnectorInfo } from '@danmaku/push';
import { createRedis, deploymentKeys, waitReady, type Redis } from '@danmaku/store';
import { startRedis, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { Switchboard } from '@danmaku/switches';

import { DEFAULT_ROUTE_CONFIG, decideRoute, grayBucket, rankConnectors, routerRoutes, versionMatches, type RouteConfig } from '../src/index.js';

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

describe('rankConnectors: weighted rendezvous hashing of the client', () => {
  const node = (id: string, sockets: number): ConnectorInfo => ({ id, url: `http://${id}`, sockets, rooms: 1, ts: 0 });
  const firstChoices = (nodes: ConnectorInfo[], clients: number, prefix = 'u'): Map<string, number> => {
    const counts = new Map<string, number>(nodes.map((n) => [n.id, 0]));
    for (let i = 0; i < clients; i++) {
      const first = rankConnectors(`${prefix}${i}`, nodes)[0] as ConnectorInfo;
      counts.set(first.id, (counts.get(first.id) ?? 0) + 1);
    }
    return counts;
  };

  it('spreads clients evenly over equally loaded connectors, and the same client always the same way', () => {
    const nodes = [node('c1', 100), node('c2', 100), node('c3', 100), node('c4', 100)];
    const counts = firstChoices(nodes, 40_000);
    console.log(`# 40,000 clients over 4 equal connectors: ${JSON.stringify(Object.fromEntries(counts))}`);
    for (const n of counts.values()) assert.ok(Math.abs(n / 40_000 - 0.25) < 0.015, `share ${n / 40_000}`);
    // Every connector is in every answer (the fallbacks), and the order is stable per client.
    assert.deepEqual(rankConnectors('alice', nodes), rankConnectors('alice', [...nodes].reverse()));
    assert.equal(new Set(rankConnectors('alice', nodes).map((n) => n.id)).size, 4);
  });

  it('weighs by load: less loaded connectors draw more, but not every client', () => {
    // Mean 1,000: weights 1/(1+0/1001), 1/(1+1000/1001), 1/(1+2000/1001) = 1, 0.5, 0.334.
    const nodes = [node('idle', 0), node('mid', 1000), node('busy', 2000)];
    const counts = firstChoices(nodes, 40_000);
    const share = (id: string): number => (counts.get(id) ?? 0) / 40_000;
    console.log(`# 40,000 clients over connectors with 0 / 1,000 / 2,000 sockets: ${JSON.stringify(Object.fromEntries(counts))}`);
    const total = 1 + 1 / (1 + 1000 / 1001) + 1 / (1 + 2000 / 1001);
    assert.ok(Math.abs(share('idle') - 1 / total) < 0.02, `idle ${share('idle')}`);
    assert.ok(Math.abs(share('mid') - 1 / (1 + 1000 / 1001) / total) < 0.02, `mid ${share('mid')}`);
    assert.ok(Math.abs(share('busy') - 1 / (1 + 2000 / 1001) / total) < 0.02, `busy ${share('busy')}`);
  });

  it('when a connector dies only its clients move, spread over all the survivors', () => {
    const nodes = [node('c1', 500), node('c2', 500), node('c3', 500), node('c4', 500)];
    const survivors = nodes.filter((n) => n.id !== 'c4');
    const moved = new Map<string, number>(survivors.map((n) => [n.id, 0]));
    for (let i = 0; i < 20_000; i++) {
      const before = (rankConnectors(`u${i}`, nodes)[0] as ConnectorInfo).id;
      const after = (rankConnectors(`u${i}`, survivors)[0] as ConnectorInfo).id;
      if (before !== 'c4') assert.equal(after, before, 'a client of a survivor stays');
      else moved.set(after, (moved.get(after) ?? 0) + 1);
    }
    const total = [...moved.values()].reduce((a, b) => a + b, 0);
    console.log(`# clients of the dead connector, by new connector: ${JSON.stringify(Object.fromEntries(moved))}`);
    for (const n of moved.values()) assert.ok(Math.abs(n / total - 1 / 3) < 0.04, `spread ${n / total}`);
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
  /** The route answer for `query` once `ready` holds of it: the router caches what it reads for 50 ms. */
  const routeOnce = (query: string, what: string, ready: (body: Awaited<ReturnType<typeof route>>['body']) => boolean) =>
    waitFor(what, async () => {
      const answer = await route(query);
      return ready(answer.body) ? answer : null;
    });

  it('hands out live connectors, ranked for the client (Bilibili least loaded first); dead and draining ones drop out', async () => {
    assert.equal((await route('uid=a')).body.reason, 'no_connectors');
    const now = Date.now();
    await registerConnector(redis, cluster, { id: 'busy', url: 'http://busy', sockets: 900, rooms: 1, ts: now, bilibili: { ws: 'ws://busy/sub', tcp: 'busy:2243' } });
    await registerConnector(redis, cluster, { id: 'idle', url: 'http://idle', sockets: 10, rooms: 1, ts: now, bilibili: { ws: 'ws://idle/sub', tcp: null } });
    await registerConnector(redis, cluster, { id: 'dead', url: 'http://dead', sockets: 0, rooms: 0, ts: now - NODE_TTL_MS - 1 });
    await registerConnector(redis, cluster, { id: 'leaving', url: 'http://leaving', sockets: 0, rooms: 0, ts: now, draining: true, bilibili: { ws: 'ws://leaving/sub', tcp: null } });
    const { body } = await routeOnce('uid=a&deviceId=d&version=1.0.0', 'the router to see the connectors', (b) => b.reason !== 'no_connectors');
    const ranked = rankConnectors('a', [
      { id: 'busy', url: 'http://busy', sockets: 900, rooms: 1, ts: now },
      { id: 'idle', url: 'http://idle', sockets: 10, rooms: 1, ts: now },
    ]).map((c) => c.url);
    assert.deepEqual(body, {
      mode: 'long',
      endpoints: ranked,
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
    const outside = await routeOnce('uid=someone', 'the router to read the new config', (b) => b.pollIntervalMs === 3000);
    assert.deepEqual(withoutBilibili(outside.body), { mode: 'short', endpoints: [], pollIntervalMs: 3000, reason: 'outside_gray' });
    assert.equal((await route('uid=vip')).body.reason, 'whitelist');
    assert.equal((await put({ enabled: false })).statusCode, 200);
    await routeOnce('uid=someone', 'the router to read enabled: false', (b) => b.reason === 'disabled');
    assert.equal((await route('uid=vip')).body.mode, 'long', 'whitelist even when off');

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
      await client.set(deploymentKeys.routeConfig(cluster), JSON.stringify({ ...DEFAULT_ROUTE_CONFIG, whitelist: { uids: ['vip'], deviceIds: [], versions: [] } }));
      const route = async (q: string) => (await app.inject({ method: 'GET', url: `/v1/route?${q}` })).json() as { mode: string; reason: string; pollIntervalMs: number };
      assert.equal((await route('uid=a')).mode, 'long');
      await switches.set({ forcePolling: true, pollIntervalMs: 5000 });
      // The router caches its answer for 10 ms.
      const forced = await waitFor('the router to force polling', async () => {
        const answer = await route('uid=a');
        return answer.mode === 'short' ? answer : null;
      });
      assert.deepEqual(withoutBilibili(forced), { mode: 'short', endpoints: [], pollIntervalMs: 5000, reason: 'forced_polling' });
      assert.equal((await route('uid=vip')).mode, 'long');
    } finally {
      switches.stop();
      await app.close();
      client.disconnect();
      await redis.stop();
    }
  });
});

