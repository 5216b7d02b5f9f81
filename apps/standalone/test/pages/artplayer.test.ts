/**
 * ArtPlayer (artplayer + artplayer-plugin-danmuku from npm) on another site, in Debian's
 * Chromium, fed by the SDK's adapter from the /sdk/ build: the plugin loads a live's comments
 * from the replay API (shown at their offsets in the video), and a room's new comments, sent over
 * HTTP, arrive live through the SDK and are drawn by the plugin.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { Archive, toArchiveRow } from '@danmaku/archive';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { launchChromium, watchPage } from './browser.js';
import { makeTestVideos } from './media.js';

const require = createRequire(import.meta.url);

/** The texts the plugin shows now (its danmu elements that are visible). */
const shown = (page: Page): Promise<string[]> =>
  page.evaluate(() => {
    const art = (window as unknown as { art: { template: { $danmuku: HTMLElement } } }).art;
    return Array.from(art.template.$danmuku.children)
      .filter((el) => (el as HTMLElement).style.visibility !== 'hidden' && (el as HTMLElement).dataset.state === 'emit')
      .map((el) => el.textContent ?? '');
  });

describe('ArtPlayer with artplayer-plugin-danmuku through the SDK', () => {
  let system: Standalone;
  let site: FastifyInstance;
  let siteOrigin: string;
  let browser: BrowserContext;
  let dir: string;
  const problems = { pageErrors: [] as string[], cspViolations: [] as string[] };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'danmaku-artplayer-'));
    makeTestVideos(dir, 10);
    copyFileSync(require.resolve('artplayer'), join(dir, 'artplayer.js'));
    copyFileSync(require.resolve('artplayer-plugin-danmuku'), join(dir, 'artplayer-plugin-danmuku.js'));
    site = Fastify();
    await site.register(fastifyStatic, { root: dir });
    await site.listen({ host: '127.0.0.1', port: 0 });
    const address = site.server.address();
    siteOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    system = await startStandalone(testConfig({ rateUserMax: 1000, rateIpMax: 1000, corsOrigins: [siteOrigin] }), createLogger('test', 'silent'));
    browser = await launchChromium(join(dir, 'profile'), ['--autoplay-policy=no-user-gesture-required']);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await site?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("loads a live's comments at their offsets, then draws the room's new ones live", async () => {
    const roomId = uniqueRoom('art');
    const liveId = `lvart${Date.now().toString(36)}`;
    const startedAt = Date.now() - 60_000;
    const archive = new Archive(testConfig().mysqlUrl);
    await archive.ready();
    await archive.recordLiveStart({ liveId, roomId, startedAt, endedAt: null }, 'host');
    await archive.recordLiveEnd(liveId, startedAt + 10_000);
    const recorded = [
      { text: 'recorded at one', offsetMs: 1000 },
      { text: 'recorded at two, top', offsetMs: 2000, mode: 'top' },
      { text: 'recorded at eight', offsetMs: 8000 },
    ];
    const rows = recorded.map((c, i) => {
      const row = toArchiveRow(
        JSON.stringify({ id: `${liveId}m${i}`, roomId, type: 'comment', ts: startedAt + c.offsetMs, user: { id: `u${i}`, name: `U${i}` }, content: c.text, liveId, offsetMs: c.offsetMs, ...(c.mode ? { mode: c.mode } : {}) }),
      );
      assert.ok(row);
      return row;
    });
    assert.equal(await archive.insert(rows), rows.length);
    await archive.close();

    writeFileSync(
      join(dir, 'art.html'),
      `<!doctype html><html><head><meta charset="utf-8"><title>ArtPlayer</title>
<style>#player { width: 800px; height: 450px; }</style></head><body><div id="player"></div>
<script src="artplayer.js"></script><script src="artplayer-plugin-danmuku.js"></script>
<script src="${system.url}/sdk/danmaku.iife.js"></script>
<script>
  const server = ${JSON.stringify(system.url)};
  window.art = new Artplayer({
    container: '#player', url: 'clip.webm', muted: true, autoplay: true, loop: true,
    plugins: [artplayerPluginDanmuku({ danmuku: Danmaku.liveDanmuku({ baseUrl: server, liveId: ${JSON.stringify(liveId)} }), speed: 8, emitter: false })],
  });
  window.art.on('ready', () => {
    window.client = Danmaku.connectArtplayer(window.art.plugins.artplayerPluginDanmuku, {
      baseUrl: server, roomId: ${JSON.stringify(roomId)},
      onMode: (mode) => { document.documentElement.dataset.mode = mode; },
    });
  });
</script></body></html>`,
    );
    const page = await browser.newPage();
    watchPage(page, 'art.html', problems);
    await page.goto(`${siteOrigin}/art.html`);
    // The recorded comments come at their offsets of the video: not the one of 0:08 yet.
    await page.waitForFunction(() => {
      const v = document.querySelector('#player video') as HTMLVideoElement | null;
      return v !== null && v.currentTime > 2.3;
    });
    const early = await shown(page);
    assert.ok(early.includes('recorded at one') && early.includes('recorded at two, top'), JSON.stringify(early));
    assert.ok(!early.includes('recorded at eight'), JSON.stringify(early));

    // Live: a comment sent over HTTP now is drawn by the plugin within moments.
    await page.waitForFunction(() => document.documentElement.dataset.mode === 'long');
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('fan', 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: 'live into ArtPlayer 🎉', color: '#FF8000' }),
    });
    assert.equal(res.status, 202, await res.text());
    await page.waitForFunction(() => {
      const art = (window as unknown as { art: { template: { $danmuku: HTMLElement } } }).art;
      return Array.from(art.template.$danmuku.children).some((el) => el.textContent === 'live into ArtPlayer 🎉' && (el as HTMLElement).style.visibility !== 'hidden');
    });
    const colour = await page.evaluate(() => {
      const art = (window as unknown as { art: { template: { $danmuku: HTMLElement } } }).art;
      const el = Array.from(art.template.$danmuku.children).find((e) => e.textContent === 'live into ArtPlayer 🎉') as HTMLElement;
      return getComputedStyle(el).color;
    });
    assert.equal(colour, 'rgb(255, 128, 0)');
    await page.close();
    assert.deepEqual(problems.pageErrors, []);
  });
});
