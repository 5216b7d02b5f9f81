/**
 * `npm run start:split` as a user runs it: one Apache Kafka broker and every role its own
 * process. Every role ready; comments across rooms reach socket.io and Bilibili viewers and
 * pollers, and a hot room's open-loop burst loses nothing for a poller. The latency targets
 * themselves are the bench suite's (split rows); here a bound several times over them catches a
 * pipeline that has turned seconds-slow, as it was on the mock broker.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { checkHotRoom, checkSpread } from './topology-checks.js';
import { freePorts, startTopology, type RunningTopology } from '@danmaku/testkit';
import { driveDeployment } from '../../../bench/lib/deployment.js';

let topology: RunningTopology;
let front = '';
let metrics: string[] = [];

before(async () => {
  const env = await freePorts(['PORT', 'ROUTER_PORT', 'CONNECTOR_PORT', 'PROCESSOR_PORT', 'ARCHIVER_PORT', 'PUSHER_PORT', 'DANMAKU_BILI_TCP_PORT']);
  const { PORT, ROUTER_PORT, CONNECTOR_PORT, PROCESSOR_PORT, ARCHIVER_PORT, PUSHER_PORT } = env as Record<string, string>;
  topology = await startTopology(
    'start:split',
    env,
    { front: PORT, router: ROUTER_PORT, connector: CONNECTOR_PORT, processor: PROCESSOR_PORT, archiver: ARCHIVER_PORT, pusher: PUSHER_PORT } as Record<string, string>,
    ['kafka'],
  );
  front = `http://127.0.0.1:${PORT}`;
  metrics = [front, `http://127.0.0.1:${PROCESSOR_PORT}`, `http://127.0.0.1:${CONNECTOR_PORT}`].map((u) => `${u}/metrics`);
});

after(async () => {
  await topology?.stop();
});

test('start:split runs on a real broker: every role ready, the route names the connector and its Bilibili TCP port', async () => {
  const readyz = (await (await fetch(`${front}/readyz`)).json()) as { ready: boolean; checks: Record<string, boolean> };
  assert.deepEqual(readyz, { ready: true, checks: { bus: true, redis: true } });
  assert.match(topology.output(), /Kafka: 127\.0\.0\.1:19092/);
  const route = (await (await fetch(`${front}/v1/route`)).json()) as { endpoints: string[]; bilibili: { tcp: string[] } };
  assert.deepEqual(route.endpoints, [`http://127.0.0.1:${topology.ports.connector}`]);
  assert.equal(route.bilibili.tcp.length, 1);
});

test('50 comments/s across 5 rooms reach socket.io and Bilibili viewers and pollers, none lost', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: front, rooms: 5, viewersPerRoom: 1, rate: 50, seconds: 6, metricsUrls: metrics });
  checkSpread('split, 50/s', result);
});

test('a hot room taking 500 comments/s open-loop for 8 s: socket.io viewers get all of it, a poller loses nothing', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: front, rooms: 1, viewersPerRoom: 1, rate: 500, seconds: 8, metricsUrls: metrics });
  checkHotRoom('split, hot room 500/s', result);
});
