import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, loadConfig } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, uniqueRoom } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';

/** The socket.io polling handshake a browser page starts with, from `origin`. */
async function handshake(url: string, origin: string): Promise<{ status: number; allow: string | null; credentials: string | null }> {
  const res = await fetch(`${url}/socket.io/?EIO=4&transport=polling`, { headers: { origin } });
  await res.text();
  return { status: res.status, allow: res.headers.get('access-control-allow-origin'), credentials: res.headers.get('access-control-allow-credentials') };
}

async function allowOf(url: string, path: string, origin: string): Promise<string | null> {
  const res = await fetch(url + path, { headers: { origin } });
  await res.text();
  return res.headers.get('access-control-allow-origin');
}

describe('CORS (DANMAKU_CORS_ORIGINS) on the HTTP API and the socket.io endpoint', () => {
  const db = testDatabase('cors');
  let system: Standalone | undefined;
  after(async () => {
    await system?.stop();
    await db.drop();
  });

  test('default: socket.io answers pages of its own host only; the API no other site; players any', async () => {
    system = await startStandalone(testConfig({ cluster: uniqueRoom('cors'), mysqlUrl: db.url }), createLogger('test', 'silent'));
    const port = new URL(system.url).port;
    const evil = await handshake(system.url, 'https://evil.example');
    assert.equal(evil.allow, null, 'a foreign Origin is not echoed');
    // The viewer page of a front on another port of this host reaches the connector.
    const samePort = await handshake(system.url, `http://127.0.0.1:${port}`);
    assert.equal(samePort.allow, `http://127.0.0.1:${port}`);
    const otherPort = await handshake(system.url, 'http://127.0.0.1:1');
    assert.equal(otherPort.allow, 'http://127.0.0.1:1');
    assert.equal(otherPort.credentials, null, 'never with credentials');

    const room = uniqueRoom('c');
    assert.equal(await allowOf(system.url, `/v1/rooms/${room}/messages`, 'https://evil.example'), null);
    assert.equal(await allowOf(system.url, '/v1/route', 'https://evil.example'), null);
    assert.equal(await allowOf(system.url, `/v1/dplayer/v3/?id=${room}`, 'https://evil.example'), '*');
    await system.stop();
    system = undefined;
  });

  test('the setting: comma-separated origins or *, anything else refused at start', () => {
    assert.deepEqual(loadConfig({ DANMAKU_CORS_ORIGINS: 'https://a.example, http://b.example:8080' }).corsOrigins, ['https://a.example', 'http://b.example:8080']);
    assert.deepEqual(loadConfig({}).corsOrigins, []);
    assert.throws(() => loadConfig({ DANMAKU_CORS_ORIGINS: 'https://a.example/' }), ConfigError);
    assert.throws(() => loadConfig({ DANMAKU_CORS_ORIGINS: 'a.example' }), ConfigError);
  });

  test('an allow-list: listed origins on every route and the socket endpoint, others nowhere', async () => {
    const allowed = 'https://player.example';
    system = await startStandalone(testConfig({ cluster: uniqueRoom('cors'), mysqlUrl: db.url, corsOrigins: [allowed] }), createLogger('test', 'silent'));
    const room = uniqueRoom('c');
    assert.equal((await handshake(system.url, allowed)).allow, allowed);
    assert.equal((await handshake(system.url, 'https://evil.example')).allow, null);
    assert.equal((await handshake(system.url, system.url)).allow, null, 'the list replaces the same-host rule');
    for (const path of [`/v1/rooms/${room}/messages`, `/v1/dplayer/v3/?id=${room}`, '/v1/route']) {
      assert.equal(await allowOf(system.url, path, allowed), allowed, path);
      assert.equal(await allowOf(system.url, path, 'https://evil.example'), null, path);
    }
    const preflight = await fetch(`${system.url}/v1/rooms/${room}/messages`, {
      method: 'OPTIONS',
      headers: { origin: allowed, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization,content-type' },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get('access-control-allow-origin'), allowed);
    assert.match(preflight.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.equal(preflight.headers.get('access-control-allow-credentials'), null);
  });
});
