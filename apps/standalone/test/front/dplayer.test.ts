/**
 * A real web player from the npm registry with its danmaku plugin: DPlayer (its published dist
 * bundle, unchanged) in Debian's Chromium, pointed at this server's DPlayer API v3 from a page on
 * another origin (so CORS is exercised, preflight included). It loads a live's comments, draws
 * them over a video made with Debian's ffmpeg, and posts a comment through its own comment box
 * that a socket.io viewer of the room receives.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { chromium, type BrowserContext } from 'playwright-core';
import { io, type Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'];

type Row = [number, number, number, string, string];
interface Packet {
  roomId: string;
  messages: { content?: string; user: { name: string } }[];
}

/** The player page another site would host: DPlayer, its danmaku pointed at our API. */
function playerPage(api: string, room: string, token: string): string {
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>DPlayer</title></head>
<body>
<div id="player" style="width:640px;height:360px"></div>
<script src="/DPlayer.min.js"></script>
<script>
  window.dp = new DPlayer({
    container: document.getElementById('player'),
    autoplay: false,
    volume: 0,
    video: { url: '/video.webm' },
    danmaku: { id: ${JSON.stringify(room)}, api: ${JSON.stringify(api)}, token: ${JSON.stringify(token)}, user: 'player-user', unlimited: true },
  });
</script>
</body></html>`;
}

describe('DPlayer (npm) in Chromium against the DPlayer API v3', () => {
  const db = testDatabase('dplayer');
  const room = uniqueRoom('dp');
  const streamer = tokenFor('dp-streamer', 'streamer', [room]);
  const viewer = tokenFor('dp-viewer');
  let system: Standalone;
  let site: FastifyInstance;
  let siteUrl: string;
  let browser: BrowserContext;
  let dir: string;
  let socket: Socket | undefined;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'danmaku-dplayer-'));
    // 20 s of VP8 (which Debian's Chromium plays), small and quick to encode.
    execFileSync('ffmpeg', ['-v', 'error', '-f', 'lavfi', '-i', 'testsrc=duration=20:size=320x180:rate=10', '-c:v', 'libvpx', '-deadline', 'realtime', '-cpu-used', '8', '-b:v', '150k', '-an', '-y', join(dir, 'video.webm')], { timeout: 120_000 });
    system = await startStandalone(
      testConfig({ cluster: uniqueRoom('dpc'), mysqlUrl: db.url, rateUserMax: 1000, rateIpMax: 1000, replaySettleMs: 1, archiverLingerMs: 0 }),
      createLogger('test', 'silent'),
    );
    site = Fastify();
    const dist = readFileSync(join(REPO_ROOT, 'node_modules/dplayer/dist/DPlayer.min.js'));
    const video = readFileSync(join(dir, 'video.webm'));
    site.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(playerPage(`${system.url}/v1/dplayer/`, room, viewer)));
    site.get('/DPlayer.min.js', async (_req, reply) => reply.type('text/javascript').send(dist));
    site.get('/favicon.ico', async (_req, reply) => reply.code(204).send());
    site.get('/video.webm', async (_req, reply) => reply.type('video/webm').send(video));
    siteUrl = await site.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launchPersistentContext(join(dir, 'profile'), { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
  });

  after(async () => {
    socket?.close();
    await browser?.close();
    await site?.close();
    await system?.stop();
    await db.drop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('loads the live\'s comments, draws them over the video, and its comment box posts one viewers receive', async () => {
    assert.notEqual(new URL(siteUrl).origin, new URL(system.url).origin, 'the player page is on another origin');
    const started = await fetch(`${system.url}/v1/rooms/${room}/lives`, { method: 'POST', headers: { authorization: `Bearer ${streamer}` } });
    assert.equal(started.status, 201);
    const earlier = ['first comment', 'second comment', '第三条弹幕 🎉'];
    for (const content of earlier) {
      const res = await fetch(`${system.url}/v1/rooms/${room}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${viewer}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content }),
      });
      assert.equal(res.status, 202);
    }
    // The player loads from the archive: wait until the archiver has them.
    await waitFor('the comments to be archived', async () => {
      const res = await fetch(`${system.url}/v1/dplayer/v3/?id=${room}`);
      return ((await res.json()) as { data: Row[] }).data.length === earlier.length;
    }, 20_000);

    // A viewer of the room on a long connection.
    const received: string[] = [];
    socket = io(system.url, { transports: ['websocket'], reconnection: false, auth: { token: tokenFor('dp-watcher') } });
    socket.on('messages', (p: Packet) => {
      if (p.roomId === room) for (const m of p.messages) if (m.content) received.push(m.content);
    });
    const joined = await new Promise<{ ok: boolean }>((resolve, reject) => {
      socket!.once('connect_error', reject);
      socket!.once('connect', () => socket!.emit('join', { roomId: room }, resolve));
    });
    assert.equal(joined.ok, true);

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error') errors.push(msg.text());
    });
    await page.goto(siteUrl);

    // DPlayer fetched the list cross-origin and parsed our answer.
    await page.waitForFunction((n) => (window as unknown as { dp: { danmaku: { dan: unknown[] } } }).dp.danmaku.dan.length === n, earlier.length, { timeout: 30_000 });
    const loaded = await page.evaluate(() => (window as unknown as { dp: { danmaku: { dan: { text: string; author: string; color: number; type: string }[] } } }).dp.danmaku.dan.map((d) => ({ ...d })));
    assert.deepEqual(loaded.map((d) => d.text), earlier);
    assert.equal(loaded[0]!.author, 'name-dp-viewer');

    // Playing, the comments fly over the video at their times in the live.
    await page.evaluate(() => (window as unknown as { dp: { play(): void } }).dp.play());
    for (const text of earlier) await page.locator('.dplayer-danmaku-item', { hasText: text }).first().waitFor({ timeout: 30_000 });

    // DPlayer's own comment box: the send is a POST with the token in its body (preflighted: JSON).
    const posted = page.waitForResponse((res) => res.url().startsWith(`${system.url}/v1/dplayer/v3/`) && res.request().method() === 'POST');
    await page.click('.dplayer-comment-icon');
    await page.fill('.dplayer-comment-input', 'sent from DPlayer');
    await page.press('.dplayer-comment-input', 'Enter');
    const answer = await posted;
    assert.equal(answer.status(), 202);
    assert.equal(((await answer.json()) as { code: number }).code, 0);

    await waitFor('the socket viewer to receive the player\'s comment', () => received.includes('sent from DPlayer'), 20_000);
    const poll = (await (await fetch(`${system.url}/v1/rooms/${room}/messages?types=comment`)).json()) as { messages: { content: string; user: { id: string } }[] };
    const mine = poll.messages.find((m) => m.content === 'sent from DPlayer');
    assert.equal(mine?.user.id, 'dp-viewer', 'sent as the token\'s user');
    assert.deepEqual(errors, [], 'no page errors (a CORS refusal would show here)');
  });
});
