/**
 * Failover, with the client SDK in processes of its own:
 * - its connector is killed (SIGKILL): it reconnects to the other one and, with its cursor, ends
 *   with every message exactly once, in order;
 * - its long connection fails three times: it degrades to polling, still gets everything, and
 *   goes back to long once a connector is reachable;
 * - a blacklisted client is told to poll, and polls.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { registerConnector, unregisterConnector } from '@danmaku/push';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { freePort, spawnTs, testConfig, tokenFor, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { assertExactlyOnceInOrder, metricValue, sendComments, spawnConnector, waitForReport, type ConnectorProcess } from '../../../connector/test/helpers.js';

interface SdkReport {
  mode: string | null;
  endpoint: string | null;
  ids: string[];
  seqs: number[];
}

const fast = { rateUserMax: 1_000_000, rateIpMax: 1_000_000, pollRetryMs: 300 };

function sdkClient(baseUrl: string, room: string, env: Record<string, string> = {}): Spawned {
  return spawnTs('packages/client/test/fixtures/sdk-client.ts', { BASE_URL: baseUrl, ROOM: room, ...env });
}

const has = (sent: string[]) => (r: SdkReport) => r.ids.length >= sent.length;

describe('client failover', () => {
  const procs: Spawned[] = [];
  const systems: Standalone[] = [];
  let redis: Redis;

  before(async () => {
    redis = createRedis(testConfig().redisUrl);
    await waitReady(redis);
  });
  after(async () => {
    for (const p of procs) await p.kill('SIGKILL');
    for (const s of systems) await s.stop();
    redis.disconnect();
  });

  async function system(cluster: string): Promise<Standalone> {
    const s = await startStandalone(testConfig({ cluster, ...fast }), createLogger('test', 'silent'), { connector: false });
    systems.push(s);
    return s;
  }

  async function connector(cluster: string): Promise<ConnectorProcess> {
    const c = await spawnConnector({ DANMAKU_CLUSTER: cluster });
    procs.push(c.proc);
    return c;
  }

  it('reconnects to another connector after a kill and ends with every message exactly once', async () => {
    const cluster = uniqueRoom('cluster');
    const sys = await system(cluster);
    const connectors = await Promise.all([connector(cluster), connector(cluster)]);
    const room = uniqueRoom('failover');
    const client = sdkClient(sys.url, room, { UID: 'viewer-1' });
    procs.push(client);
    await client.waitForOutput(/mode long connected http/);
    const first = /mode long connected (\S+)/.exec(client.output())?.[1] as string;
    const victim = connectors.find((c) => c.url === first) as ConnectorProcess;
    const survivor = connectors.find((c) => c !== victim) as ConnectorProcess;
    assert.ok(victim, `the client is on one of ours (${first})`);

    const before = await sendComments(sys.url, room, 10, 'before');
    await waitForReport('the first messages', client, has(before));

    await victim.proc.kill('SIGKILL');
    // Sent while the client has no connection: it must get them with its cursor on rejoin.
    const during = await sendComments(sys.url, room, 10, 'during');
    await client.waitForOutput(new RegExp(`mode long connected ${survivor.url.replace(/[.:/]/g, '\\$&')}`), 15_000).catch((e) => { console.log(client.output()); throw e; });
    const afterKill = await sendComments(sys.url, room, 10, 'after');

    const all = [...before, ...during, ...afterKill];
    const got = await waitForReport<SdkReport>('every message', client, has(all));
    assertExactlyOnceInOrder(got, all, 'failover client');
    assert.equal(got.endpoint, survivor.url);
  });

  it('degrades to polling after three failed connects, gets everything, and returns to long later', async () => {
    const cluster = uniqueRoom('cluster');
    const sys = await system(cluster);
    // A connector that is registered and "alive" but unreachable: every connect fails.
    const deadUrl = `http://127.0.0.1:${await freePort()}`;
    const beat = () => registerConnector(redis, cluster, { id: 'ghost', url: deadUrl, sockets: 0, rooms: 0, ts: Date.now() });
    await beat();
    const beating = setInterval(() => void beat(), 500);
    try {
      const room = uniqueRoom('degrade');
      const client = sdkClient(sys.url, room, { UID: 'viewer-2', LONG_RETRY_MS: '2000', CONNECT_TIMEOUT_MS: '1000' });
      procs.push(client);
      await client.waitForOutput(/mode short degraded/, 15_000);
      const polled = await sendComments(sys.url, room, 12, 'polled');
      const got = await waitForReport<SdkReport>('messages by polling', client, has(polled));
      assertExactlyOnceInOrder(got, polled, 'degraded client');
      assert.equal(got.mode, 'short');
      // It told the front how its connections went (POST /v1/client-metrics).
      await waitFor('the degrade reported', async () => (await metricValue(sys.url, 'danmaku_client_events_total', { kind: 'degraded', mode: 'short' })) >= 1);
      assert.ok((await metricValue(sys.url, 'danmaku_client_events_total', { kind: 'connect_failed', mode: 'long' })) >= 3);

      // A real connector comes up and the ghost goes: the client's retry finds long again.
      clearInterval(beating);
      await unregisterConnector(redis, cluster, 'ghost');
      const real = await connector(cluster);
      await client.waitForOutput(new RegExp(`mode long connected ${real.url.replace(/[.:/]/g, '\\$&')}`), 20_000);
      const live = await sendComments(sys.url, room, 8, 'live');
      const final = await waitForReport<SdkReport>('messages over long again', client, has([...polled, ...live]));
      assertExactlyOnceInOrder(final, [...polled, ...live], 'restored client');
      assert.equal(final.mode, 'long');
    } finally {
      clearInterval(beating);
    }
  });

  it('tells a blacklisted client to poll, and it polls', async () => {
    const cluster = uniqueRoom('cluster');
    const sys = await system(cluster);
    await connector(cluster);
    const admin = tokenFor('ops', 'admin');
    const put = await fetch(`${sys.url}/v1/admin/route-config`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ blacklist: { uids: ['bad-uid'], versions: ['1.0.*'] } }),
    });
    assert.equal(put.status, 200, await put.text());
    const route = async (q: string) => (await (await fetch(`${sys.url}/v1/route?${q}`)).json()) as { mode: string; reason: string; endpoints: string[] };
    await waitFor('the new config served', async () => (await route('uid=bad-uid')).mode === 'short');
    const { bilibili, ...answer } = (await route('uid=bad-uid')) as { bilibili?: { ws: string[]; tcp: string[] } };
    assert.deepEqual(answer, { mode: 'short', endpoints: [], pollIntervalMs: 2000, reason: 'blacklist' });
    // The Bilibili protocol's endpoints are listed whatever the mode: its tools do not follow the gray.
    assert.equal(bilibili?.ws.length, 1);
    assert.match(bilibili?.ws[0] ?? '', /^ws:\/\/127\.0\.0\.1:\d+\/sub$/);
    assert.deepEqual(bilibili?.tcp, [], 'TCP is off in tests');
    assert.equal((await route('uid=ok&version=1.0.7')).reason, 'blacklist');
    assert.equal((await route('uid=ok&version=1.1.0')).mode, 'long');

    const room = uniqueRoom('blacklist');
    const client = sdkClient(sys.url, room, { UID: 'bad-uid' });
    procs.push(client);
    await client.waitForOutput(/mode short blacklist/);
    const sent = await sendComments(sys.url, room, 6, 'poll me');
    const got = await waitForReport<SdkReport>('messages by polling', client, has(sent));
    assertExactlyOnceInOrder(got, sent, 'blacklisted client');
    assert.equal(got.mode, 'short');
  });
});
