import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { freePort, spawnTs, startKafka, testConfig, tokenFor, uniqueRoom, waitFor, type TestKafka, type Spawned } from '@danmaku/testkit';
import { ensureDatabase } from '@danmaku/archive';
import { testDatabase } from '../../../../packages/archive/test/db.js';

/**
 * Every role's /metrics passes `promtool check metrics` (Debian's prometheus package; npm test
 * installs it): what a Prometheus operator runs before scraping a new target.
 */

interface Role {
  name: string;
  entry: string;
  portEnv: string;
}

const ROLES: Role[] = [
  { name: 'front', entry: 'apps/front/src/main.ts', portEnv: 'PORT' },
  { name: 'processor', entry: 'apps/processor/src/main.ts', portEnv: 'PROCESSOR_PORT' },
  { name: 'archiver', entry: 'apps/archiver/src/main.ts', portEnv: 'ARCHIVER_PORT' },
  { name: 'router', entry: 'apps/router/src/main.ts', portEnv: 'ROUTER_PORT' },
  { name: 'connector', entry: 'apps/connector/src/main.ts', portEnv: 'CONNECTOR_PORT' },
  { name: 'pusher', entry: 'apps/pusher/src/main.ts', portEnv: 'PUSHER_PORT' },
  { name: 'standalone', entry: 'apps/standalone/src/main.ts', portEnv: 'PORT' },
];

const db = testDatabase('promtool');
let kafka: TestKafka;
const running: { role: Role; url: string; proc: Spawned }[] = [];

function promtool(text: string): { status: number | null; output: string } {
  const result = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 30_000 });
  if (result.error) throw new Error(`promtool could not run (npm test installs Debian's prometheus package): ${result.error.message}`);
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

before(async () => {
  kafka = await startKafka({ topics: { [testConfig().topic]: testConfig().partitions } });
  // The archive's database exists before the roles start, as in a deployment.
  await ensureDatabase(db.url);
  const cluster = uniqueRoom('promtool');
  for (const role of ROLES) {
    const port = await freePort();
    const env: NodeJS.ProcessEnv = {
      LOG_LEVEL: 'warn',
      DANMAKU_CLUSTER: cluster,
      MYSQL_URL: db.url,
      KAFKA_BROKERS: role.name === 'standalone' ? '' : kafka.brokers.join(','),
      [role.portEnv]: String(port),
    };
    running.push({ role, url: `http://127.0.0.1:${port}`, proc: spawnTs(role.entry, env) });
  }
  for (const { role, url, proc } of running) {
    await waitFor(`${role.name} to answer /healthz`, async () => {
      if (proc.child.exitCode !== null) throw new Error(`${role.name} exited:\n${proc.output()}`);
      return (await fetch(`${url}/healthz`).catch(() => null))?.ok === true;
    }, 240_000).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}\n${role.name} printed:\n${proc.output()}`);
    });
  }
});

after(async () => {
  for (const { proc } of running) await proc.kill();
  await kafka?.stop();
  await db.drop();
});

describe('promtool check metrics', () => {
  test('every role\'s /metrics passes, after some traffic gave its series samples', async () => {
    const room = uniqueRoom('m');
    const token = tokenFor('prom1');
    for (const { role, url } of running) {
      if (role.name !== 'front' && role.name !== 'standalone') continue;
      const sent = await fetch(`${url}/v1/rooms/${room}/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ type: 'comment', content: 'metrics' }),
      });
      assert.equal(sent.status, 202, `${role.name} send`);
      assert.equal((await fetch(`${url}/v1/rooms/${room}/messages`)).status, 200);
      assert.equal((await fetch(`${url}/v1/rooms/${room}/messages?cursor=bad`)).status, 400, 'an error series too');
    }
    assert.equal((await fetch(`${running.find((r) => r.role.name === 'router')!.url}/v1/route`)).status, 200);

    for (const { role, url } of running) {
      const res = await fetch(`${url}/metrics`);
      assert.equal(res.status, 200, role.name);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      assert.match(text, /^# HELP /m, `${role.name}: metrics present`);
      assert.match(text, /^process_cpu_seconds_total /m);
      const checked = promtool(text);
      assert.equal(checked.status, 0, `${role.name}: promtool check metrics\n${checked.output}`);
    }
  });

  test('promtool does catch a bad exposition (the check is real)', () => {
    const bad = '# HELP x_total a gauge named like a counter\n# TYPE x_total gauge\nx_total 1\n';
    assert.notEqual(promtool(bad).status, 0);
  });
});
