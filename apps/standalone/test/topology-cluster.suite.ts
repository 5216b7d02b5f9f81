/**
 * `npm run start:cluster` as a user runs it: three Apache Kafka brokers, a Redis Cluster and every
 * role twice. All eleven roles ready, each connector on its own Bilibili TCP port (named by
 * /v1/route), and delivery across rooms and in a hot room as on the split topology (see
 * topology-split.suite.ts for what the bounds mean).
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, test } from 'node:test';
import { checkHotRoom, checkSpread } from './topology-checks.js';
import { TOPOLOGY_PORTS, freePorts, startTopology, topologyRoles, waitFor, type RunningTopology } from '@danmaku/testkit';
import { driveDeployment } from '../../../bench/lib/deployment.js';

let topology: RunningTopology;
let fronts: string[] = [];
let metrics: string[] = [];
let tcpBase = 0;

before(async () => {
  const env = await freePorts(TOPOLOGY_PORTS);
  const n = (name: string, plus = 0): string => String(Number(env[name]) + plus);
  tcpBase = Number(env.DANMAKU_BILI_TCP_PORT);
  topology = await startTopology('start:cluster', env, topologyRoles(env, 2), ['kafka-cluster', 'redis-cluster']);
  fronts = [0, 1].map((i) => `http://127.0.0.1:${n('PORT', i)}`);
  metrics = [...fronts, ...[0, 1].map((i) => `http://127.0.0.1:${n('PROCESSOR_PORT', i * 10)}`), ...[0, 1].map((i) => `http://127.0.0.1:${n('CONNECTOR_PORT', i)}`)].map((u) => `${u}/metrics`);
});

after(async () => {
  await topology?.stop();
});

test('start:cluster comes up on three brokers: eleven roles ready, two connectors each with its own Bilibili TCP port', async () => {
  assert.equal(Object.keys(topology.ports).length, 11);
  // The banner, printed once every role is ready, names the three brokers.
  await waitFor('the start:cluster banner', () => /Kafka 127\.0\.0\.1:29092,127\.0\.0\.1:29093,127\.0\.0\.1:29094/.test(topology.output()), 30_000);
  const route = (await (await fetch(`${fronts[0]}/v1/route`)).json()) as { endpoints: string[]; bilibili: { tcp: string[] } };
  assert.equal(route.endpoints.length, 2);
  assert.deepEqual([...route.bilibili.tcp].sort(), [`127.0.0.1:${tcpBase}`, `127.0.0.1:${tcpBase + 1}`]);
  // Both take connections on their Bilibili TCP ports.
  for (const address of route.bilibili.tcp) {
    await new Promise<void>((resolve, reject) => {
      const socket = connect(Number(address.split(':')[1]), '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', reject);
    });
  }
});

test('50 comments/s across 5 rooms reach viewers on both connectors and pollers, none lost', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: fronts[0] as string, rooms: 5, viewersPerRoom: 2, rate: 50, seconds: 6, metricsUrls: metrics });
  checkSpread('cluster, 50/s', result);
});

test('a hot room taking 500 comments/s open-loop for 8 s: socket.io viewers get all of it, a poller loses nothing', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: fronts[1] as string, rooms: 1, viewersPerRoom: 2, rate: 500, seconds: 8, metricsUrls: metrics });
  checkHotRoom('cluster, hot room 500/s', result);
});
