/**
 * A connector's death with 300 clients on three connectors (the reconnect-storm bench, small):
 * one connector is killed -9; every client it had comes back on a survivor (its next connector by
 * the route's ranking), the survivors share them, and the full-jitter backoff spreads the
 * reconnects over about a second instead of one burst. Clients of the survivors stay where they are.
 */
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { httpAgent } from '../../../../bench/lib/load/clients.js';
import { StormViewer, summarise, type Comeback } from '../../../../bench/lib/storm.js';
import { sendComments, spawnConnector, type ConnectorProcess } from '../../../connector/test/helpers.js';

const CLIENTS = 300;
const ROOMS = 10;
const SOURCES = 4;

const cluster = uniqueRoom('storm');
let sys: Standalone;
const connectors: ConnectorProcess[] = [];
const viewers: StormViewer[] = [];

before(async () => {
  sys = await startStandalone(testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000 }), createLogger('test', 'silent'), { connector: false });
  for (let i = 0; i < 3; i++) connectors.push(await spawnConnector({ DANMAKU_CLUSTER: cluster, DANMAKU_PUSH_SWEEP_MS: '1000' }));
  await waitFor('three connectors routed', async () => ((await (await fetch(`${sys.url}/v1/route?uid=probe`)).json()) as { endpoints: string[] }).endpoints.length === 3, 15_000);
});

after(async () => {
  for (const v of viewers) v.close();
  for (const c of connectors) await c.proc.kill('SIGKILL');
  await sys.stop();
});

it('300 clients, one of three connectors killed -9: all of its clients back on the two survivors, spread, within seconds', { timeout: 120_000 }, async () => {
  const rooms = Array.from({ length: ROOMS }, (_, r) => uniqueRoom(`storm${r}`));
  for (const room of rooms) await sendComments(sys.url, room, 2, 'before');
  const agents = Array.from({ length: SOURCES }, (_, s) => httpAgent(sys.url, `127.0.0.${s + 1}`));
  const lostAt = new Map<number, number>();
  const comebacks = new Map<number, Comeback>();
  let killedAt = 0;
  let killedUrl = '';
  const where = new Map<number, string>();
  for (let i = 0; i < CLIENTS; i++) {
    const viewer = new StormViewer(
      { baseUrl: sys.url, uid: `storm-${i}`, roomId: rooms[i % ROOMS] as string, agent: agents[i % SOURCES] as (typeof agents)[number], localAddress: `127.0.0.${(i % SOURCES) + 1}` },
      {
        up: (endpoint, at) => {
          where.set(i, endpoint);
          const c = comebacks.get(i);
          if (c && c.backAt === null) {
            c.backAt = at;
            c.endpoint = endpoint;
          }
        },
        lost: (endpoint, at) => {
          lostAt.set(i, at);
          if (killedAt > 0 && endpoint === killedUrl && !comebacks.has(i)) comebacks.set(i, { lostAt: at, backAt: null, endpoint: null, failures: 0 });
        },
        failed: () => {
          const c = comebacks.get(i);
          if (c) c.failures++;
        },
      },
    );
    viewers.push(viewer);
    await viewer.start();
  }
  await waitFor('every client joined', () => where.size === CLIENTS, 60_000, 20);
  const before = new Map<string, number>();
  for (const url of where.values()) before.set(url, (before.get(url) ?? 0) + 1);
  assert.equal(before.size, 3, `the route spread the clients over all three connectors: ${JSON.stringify([...before])}`);

  const victim = connectors[0] as ConnectorProcess;
  killedUrl = victim.url;
  const onVictim = before.get(victim.url) ?? 0;
  killedAt = Date.now();
  await victim.proc.kill('SIGKILL');
  await waitFor('the killed connector\'s clients to notice', () => comebacks.size === onVictim, 30_000, 20);
  await waitFor('every client back', () => [...comebacks.values()].every((c) => c.backAt !== null), 30_000, 20);
  const summary = summarise(killedAt, [...comebacks.values()]);
  process.stdout.write(`# reconnect storm, ${CLIENTS} clients: ${JSON.stringify(summary)}\n`);

  assert.equal(summary.moved, onVictim);
  assert.ok(summary.allBackMs !== null && summary.allBackMs < 15_000, `all back in ${summary.allBackMs} ms`);
  assert.equal(summary.spread[victim.url], undefined, 'none went back to the dead connector');
  const survivors = connectors.slice(1).map((c) => c.url);
  for (const url of survivors) {
    const share = (summary.spread[url] ?? 0) / summary.moved;
    assert.ok(share >= 0.25 && share <= 0.75, `${url} took ${Math.round(share * 100)} % of the moved clients: ${JSON.stringify(summary.spread)}`);
  }
  // Full jitter over the first second: a burst (every client at once) would put them all in one 100 ms.
  assert.ok(summary.peak100msShare <= 0.4, `${Math.round(summary.peak100msShare * 100)} % of the reconnects came in one 100 ms`);
  // The survivors' clients never noticed.
  const others = [...lostAt.keys()].filter((i) => !comebacks.has(i));
  assert.deepEqual(others, [], 'clients of the survivors stayed connected');
});
