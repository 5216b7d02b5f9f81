/**
 * `npm run start:split` as a user runs it: one Apache Kafka broker and every role its own
 * process, compiled JavaScript on Node 22 or later (no tsx). Every role ready; comments across rooms reach socket.io and Bilibili viewers and
 * pollers, and a hot room's open-loop burst loses nothing for a poller. The latency targets
 * themselves are the bench suite's (split rows); here a bound several times over them catches a
 * pipeline that has turned seconds-slow, as it was on the mock broker.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checkHotRoom, checkSpread } from './topology-checks.js';
import { REPO_ROOT, freePorts, startTopology, type RunningTopology } from '@danmaku/testkit';
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

test('every role is a node process of Node 22 or later running its compiled dist/main.js, no tsx', () => {
  // start-split.sh prints each role's pid; scripts/role.sh execs node, so it is the role's own.
  const started = [...topology.output().matchAll(/started (\w+) \(pid (\d+)\)/g)].map((m) => ({ role: m[1] as string, pid: Number(m[2]) }));
  assert.deepEqual(started.map((s) => s.role).sort(), ['archiver', 'connector', 'front', 'processor', 'pusher', 'router']);
  for (const { role, pid } of started) {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    const exe = readlinkSync(`/proc/${pid}/exe`);
    const version = execFileSync(exe, ['--version'], { encoding: 'utf8' }).trim();
    assert.ok(Number(/^v(\d+)\./.exec(version)?.[1]) >= 22, `${role} runs on ${exe} ${version}`);
    const nodeOptions = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').find((v) => v.startsWith('NODE_OPTIONS=')) ?? '';
    assert.ok(![...argv, nodeOptions].some((arg) => /tsx|conditions/.test(arg)), `${role} loads neither tsx nor the sources: ${argv.join(' ')} ${nodeOptions}`);
    assert.ok(argv.includes('--enable-source-maps'), `${role} maps stack traces to the sources: ${argv.join(' ')}`);
    assert.match(argv.find((arg) => arg.endsWith('.js')) ?? '', new RegExp(`(^|/)apps/${role}/dist/main\\.js$`), `${role}'s entry: ${argv.join(' ')}`);
  }
});

test('the front serves the page scripts and the SDK that npm run build bundled', async () => {
  const bundles = join(REPO_ROOT, 'packages/pages/dist/bundles');
  const viewer = await fetch(`${front}/js/viewer.js`);
  assert.equal(viewer.status, 200);
  assert.equal(await viewer.text(), readFileSync(join(bundles, 'pages/viewer.js'), 'utf8'));
  // The plain name redirects to the hashed build.
  const sdk = await fetch(`${front}/sdk/danmaku.iife.js`);
  assert.equal(sdk.status, 200);
  assert.match(sdk.url, /\/sdk\/danmaku\.iife\.[0-9a-f]{16}\.js$/);
  assert.equal(await sdk.text(), readFileSync(join(bundles, 'sdk/iife.js'), 'utf8'));
});

test('50 comments/s across 5 rooms reach socket.io and Bilibili viewers and pollers, none lost', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: front, rooms: 5, viewersPerRoom: 1, rate: 50, seconds: 6, metricsUrls: metrics });
  checkSpread('split, 50/s', result);
});

test('a hot room taking 500 comments/s open-loop for 8 s: socket.io viewers get all of it, a poller loses nothing', { timeout: 120_000 }, async () => {
  const result = await driveDeployment({ target: front, rooms: 1, viewersPerRoom: 1, rate: 500, seconds: 8, metricsUrls: metrics });
  checkHotRoom('split, hot room 500/s', result);
});
