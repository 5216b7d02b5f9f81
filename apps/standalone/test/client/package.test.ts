/**
 * The SDK as a package: built (scripts/build-sdk.ts), packed with `npm pack`, installed into an
 * empty project outside the repository (its socket.io-client from the npm registry or cache),
 * then used from Node (receive and send against a standalone server on 127.0.0.1), type-checked
 * against its declarations, and bundled for a browser page that does the same in Chromium.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { buildSdkPackage } from '../../../../scripts/build-sdk.js';
import { launchChromium } from '../pages/browser.js';

describe('@danmaku/client packed and installed outside the repository', () => {
  let dir: string;
  let app: string;
  let system: Standalone;
  let site: FastifyInstance;
  let siteOrigin: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'danmaku-sdk-pack-'));
    const dist = join(dir, 'dist');
    await buildSdkPackage(dist);
    execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: dist });
    const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    app = join(dir, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-user', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', join(dir, tarball)], { cwd: app });

    site = Fastify();
    await site.register(fastifyStatic, { root: app });
    await site.listen({ host: '127.0.0.1', port: 0 });
    const address = site.server.address();
    siteOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    system = await startStandalone(testConfig({ corsOrigins: [siteOrigin] }), createLogger('test', 'silent'));
  });

  after(async () => {
    await system?.stop();
    await site?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('installs with socket.io-client as its only dependency and nothing of the workspace', () => {
    const installed = readdirSync(join(app, 'node_modules', '@danmaku'));
    assert.deepEqual(installed, ['client']);
    const tree = JSON.parse(execFileSync('npm', ['ls', '--json', '--depth=1'], { cwd: app, encoding: 'utf8' })) as {
      dependencies: Record<string, { dependencies?: Record<string, unknown> }>;
    };
    assert.deepEqual(Object.keys(tree.dependencies['@danmaku/client']?.dependencies ?? {}), ['socket.io-client']);
  });

  it('from Node: receives what another user sends over HTTP, and sends', async () => {
    const roomId = uniqueRoom('pkg');
    writeFileSync(
      join(app, 'node-user.mjs'),
      `import { createClient } from '@danmaku/client';
const got = [];
const client = createClient({
  baseUrl: process.env.BASE_URL, roomId: process.env.ROOM, token: process.env.TOKEN, types: ['comment'],
  onMessages: (messages) => got.push(...messages.map((m) => m.content)),
});
await client.start();
const started = Date.now();
while (client.mode === null && Date.now() - started < 10000) await new Promise((r) => setTimeout(r, 50));
console.log('mode ' + client.mode);
const sent = await client.send({ type: 'comment', content: 'from node ' + process.env.ROOM });
console.log('sent ' + sent.id);
while (!got.includes('from curl') && Date.now() - started < 20000) await new Promise((r) => setTimeout(r, 50));
console.log('got ' + JSON.stringify(got));
await client.stop();
`,
    );
    const child = spawn('node', ['node-user.mjs'], {
      cwd: app,
      env: { ...process.env, BASE_URL: system.url, ROOM: roomId, TOKEN: tokenFor('node-user', 'viewer') },
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    // Another user's comment, once the script is connected and has sent its own.
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        if (/^sent /m.test(stdout)) resolve();
      });
      void exited.then(() => reject(new Error(`exited early: ${stdout} ${stderr}`)));
    });
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('curl-user', 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: 'from curl' }),
    });
    assert.equal(res.status, 202);
    const status = await exited;
    assert.equal(status, 0, stderr);
    assert.match(stdout, /^mode (long|short)$/m);
    assert.match(stdout, /^sent \S+$/m);
    // The other user's comment and the script's own came back through the room.
    assert.match(stdout, new RegExp(`got .*from node ${roomId}`));
    assert.match(stdout, /got .*from curl/);
  });
  it('type-checks against the packed declarations', () => {
    writeFileSync(
      join(app, 'check.ts'),
      `import { createClient, type Message, ClientError } from '@danmaku/client';
import { Stage } from '@danmaku/client/stage';
import { DanmakuLayer } from '@danmaku/client/layer';
const c = createClient({ baseUrl: 'http://x', roomId: 'r', onMessages: (m: Message[]) => m.map((x) => x.content) });
void c.start(); void c.send({ type: 'comment', content: 'x' }).then((r) => r.id);
export const s: typeof Stage = Stage; export const l: typeof DanmakuLayer = DanmakuLayer; export const e = ClientError;
// @ts-expect-error roomId is required
createClient({ baseUrl: 'http://x' });
`,
    );
    const tsc = join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { strict: true, noEmit: true, module: 'esnext', moduleResolution: 'bundler', target: 'es2022', lib: ['es2022', 'dom'], types: [], skipLibCheck: true },
        files: ['check.ts'],
      }),
    );
    const out = spawnSync(tsc, ['-p', 'tsconfig.json'], { cwd: app, encoding: 'utf8' });
    assert.equal(out.status, 0, out.stdout + out.stderr);
  });

  it('from a browser bundle: receives and sends in Chromium, from another origin', async () => {
    const roomId = uniqueRoom('pkgweb');
    writeFileSync(
      join(app, 'web.js'),
      `import { createClient } from '@danmaku/client';
const out = (window.__got = []);
const client = createClient({
  baseUrl: ${JSON.stringify(system.url)}, roomId: ${JSON.stringify(roomId)}, token: ${JSON.stringify(tokenFor('web-user', 'viewer'))}, types: ['comment'],
  onMessages: (messages) => out.push(...messages.map((m) => m.content)),
  onMode: (mode) => { document.documentElement.dataset.mode = mode; },
});
window.__send = (text) => client.send({ type: 'comment', content: text }).then((r) => r.id);
void client.start();
`,
    );
    await build({ entryPoints: [join(app, 'web.js')], absWorkingDir: app, bundle: true, format: 'esm', platform: 'browser', outfile: join(app, 'web.bundle.js'), logLevel: 'silent' });
    writeFileSync(join(app, 'web.html'), '<!doctype html><meta charset="utf-8"><script type="module" src="web.bundle.js"></script>');
    const profile = join(dir, 'profile');
    const browser = await launchChromium(profile);
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      await page.goto(`${siteOrigin}/web.html`);
      await page.waitForFunction(() => document.documentElement.dataset.mode === 'long');
      const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokenFor('other', 'viewer')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: 'to the browser' }),
      });
      assert.equal(res.status, 202);
      await page.waitForFunction(() => (window as unknown as { __got: string[] }).__got.includes('to the browser'));
      const id = await page.evaluate(() => (window as unknown as { __send: (t: string) => Promise<string> }).__send('from the browser'));
      assert.ok(id);
      await page.waitForFunction(() => (window as unknown as { __got: string[] }).__got.includes('from the browser'));
      const poll = (await (await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=comment`)).json()) as { messages: { content: string }[] };
      assert.ok(poll.messages.some((m) => m.content === 'from the browser'), 'the server has it');
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
});
