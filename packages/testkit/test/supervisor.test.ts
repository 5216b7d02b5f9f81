import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freePort, testConfig } from '@danmaku/testkit';
import { Supervisor } from '../../../scripts/supervisor.js';

test('the supervisor starts a role, restarts it after kill -9, and stops it', async () => {
  const port = await freePort();
  const lines: string[] = [];
  const supervisor = new Supervisor({
    roles: [{ name: 'router-a', entry: 'apps/router/src/main.ts', port, env: { ROUTER_PORT: String(port), REDIS_URL: testConfig().redisUrl, LOG_LEVEL: 'warn' } }],
    log: (line) => lines.push(line),
    readyTimeoutMs: 60_000,
  });
  try {
    await supervisor.start();
    const first = supervisor.pid('router-a');
    assert.ok(first);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    supervisor.kill('router-a');
    await supervisor.waitReady('router-a', 1);
    assert.notEqual(supervisor.pid('router-a'), first);
    assert.equal(supervisor.restarts('router-a'), 1);
    assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.ok(lines.some((l) => /router-a exited \(SIGKILL\); restarting/.test(l)), lines.join('\n'));
  } finally {
    await supervisor.stop();
  }
  await assert.rejects(fetch(`http://127.0.0.1:${port}/readyz`));
});

test('the supervisor starts roles in parallel and waits for every one', async () => {
  const ports = [await freePort(), await freePort()];
  const supervisor = new Supervisor({
    roles: ports.map((port, i) => ({ name: `router-${i}`, entry: 'apps/router/src/main.ts', port, env: { ROUTER_PORT: String(port), REDIS_URL: testConfig().redisUrl, LOG_LEVEL: 'warn' } })),
    log: () => undefined,
    readyTimeoutMs: 60_000,
  });
  try {
    await supervisor.start({ parallel: true });
    for (const port of ports) assert.equal((await fetch(`http://127.0.0.1:${port}/readyz`)).status, 200);
    assert.ok(supervisor.names().every((name) => supervisor.isReady(name)));
  } finally {
    await supervisor.stop();
  }
});
