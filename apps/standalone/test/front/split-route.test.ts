/**
 * The roles split into processes over Apache Kafka (a broker of the test's own), as `npm run start:split`
 * runs them: the front answers `GET /v1/route` itself, so the viewer page, which asks the address
 * it was served from, gets a long connection as it does in standalone, and comments reach it over
 * socket.io from the connector process. Debian's Chromium, driven by playwright-core.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import { freePort, spawnTs, startKafka, tokenFor, uniqueRoom, waitFor, type TestKafka, type Spawned } from '@danmaku/testkit';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

interface RouteAnswer {
  mode: 'long' | 'short';
  endpoints: string[];
}

describe('split roles: the viewer page on a long connection', () => {
  let kafka: TestKafka;
  const roles: Spawned[] = [];
  let browser: BrowserContext;
  let profile: string;
  let frontUrl = '';
  let routerUrl = '';
  let connectorUrl = '';

  const spawnRole = async (role: string, env: Record<string, string>, ready: RegExp): Promise<Spawned> => {
    const proc = spawnTs(`apps/${role}/src/main.ts`, env);
    roles.push(proc);
    await proc.waitForOutput(ready, 60_000);
    return proc;
  };

  before(async () => {
    kafka = await startKafka({ topics: { 'danmaku.messages': 8 } });
    const env = {
      KAFKA_BROKERS: kafka.brokers.join(','),
      // A cluster of its own: the router hands out only this test's connector.
      DANMAKU_CLUSTER: uniqueRoom('split-cluster'),
      LOG_LEVEL: 'info',
      DANMAKU_PROCESSOR_LINGER_MS: '0',
    };
    const [processorPort, archiverPort, pusherPort, connectorPort, routerPort, frontPort] = await Promise.all(Array.from({ length: 6 }, () => freePort()));
    // Consumers first, the front last, as scripts/start-split.sh starts them.
    await spawnRole('processor', { ...env, PROCESSOR_PORT: String(processorPort) }, /processor consuming/);
    await spawnRole('archiver', { ...env, ARCHIVER_PORT: String(archiverPort) }, /archiver consuming/);
    await spawnRole('pusher', { ...env, PUSHER_PORT: String(pusherPort) }, /pusher listening on/);
    const connector = await spawnRole('connector', { ...env, CONNECTOR_PORT: String(connectorPort) }, /connector \S+ listening on \S+/);
    connectorUrl = /connector \S+ listening on (\S+)/.exec(connector.output())?.[1] as string;
    await spawnRole('router', { ...env, ROUTER_PORT: String(routerPort) }, /router listening on/);
    routerUrl = `http://127.0.0.1:${routerPort}`;
    await spawnRole('front', { ...env, PORT: String(frontPort) }, /front listening on/);
    frontUrl = `http://127.0.0.1:${frontPort}`;
    profile = mkdtempSync(join(tmpdir(), 'danmaku-chromium-'));
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    await browser?.close();
    // The front first (it takes traffic), the consumers last.
    for (const proc of roles.reverse()) await proc.kill();
    await kafka?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('the front and the router each answer GET /v1/route with the connector', async () => {
    const ask = async (base: string): Promise<RouteAnswer> => {
      // The connector registers in Redis with a heartbeat; a router reads the registry every second.
      return waitFor(`${base} to route to the connector`, async () => {
        const res = await fetch(`${base}/v1/route?uid=u1`);
        assert.equal(res.status, 200, await res.clone().text());
        const answer = (await res.json()) as RouteAnswer;
        return answer.mode === 'long' && answer.endpoints.includes(connectorUrl) ? answer : null;
      }, 15_000);
    };
    const fromFront = await ask(frontUrl);
    const fromRouter = await ask(routerUrl);
    assert.deepEqual(fromFront.endpoints, fromRouter.endpoints);
  });

  it('the viewer page connects with socket.io to the connector and shows comments sent over HTTP', async () => {
    const roomId = uniqueRoom('split-page');
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    const sockets: string[] = [];
    page.on('websocket', (ws) => sockets.push(ws.url()));
    await page.goto(`${frontUrl}/rooms/${roomId}`);
    await page.locator('#mode', { hasText: 'live (socket)' }).waitFor({ timeout: 30_000 });
    assert.ok(
      sockets.some((url) => url.startsWith(connectorUrl.replace(/^http/, 'ws') + '/socket.io/')),
      `a socket.io WebSocket to the connector (${connectorUrl}), got ${sockets.join(', ') || 'none'}`,
    );

    // Front -> Kafka -> processor -> Redis -> pusher -> connector -> the page, each its own process.
    const res = await fetch(`${frontUrl}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('split-sender')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: 'hello across the split roles' }),
    });
    assert.equal(res.status, 202, await res.text());
    await page.locator('#stage .danmaku', { hasText: 'hello across the split roles' }).waitFor({ timeout: 30_000 });
    assert.match((await page.textContent('#mode')) ?? '', /live \(socket\)/, 'still on the long connection');
    assert.deepEqual(errors, []);
    await page.close();
  });
});
