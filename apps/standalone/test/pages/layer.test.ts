/**
 * The SDK served at /sdk/ and `<danmaku-layer>` on another site, in Debian's Chromium: a second
 * server on another port stands for a blog with a plain `<video>` and one playing HLS through
 * hls.js; each loads the SDK from the front (the IIFE pinned by its SRI hash, or the ES module by
 * its plain name) and puts the layer over its video. Live comments sent over HTTP appear over the
 * video; a replay paused at 0:05 shows exactly the comments of 0:05.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { Archive, toArchiveRow } from '@danmaku/archive';
import type { Config } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { drawnItems, launchChromium, overlaps, watchPage } from './browser.js';
import { makeTestVideos } from './media.js';

const require = createRequire(import.meta.url);

interface SdkIndex {
  files: { name: string; file: string; url: string; format: string; integrity: string }[];
}

describe('the SDK and <danmaku-layer> on another site', () => {
  let system: Standalone;
  let config: Config;
  let site: FastifyInstance;
  let siteOrigin: string;
  let browser: BrowserContext;
  let dir: string;
  const logger = createLogger('test', 'silent');
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const sdkIndex = async (): Promise<SdkIndex> => (await (await fetch(`${system.url}/sdk/index.json`)).json()) as SdkIndex;

  /** A page of the site: its video (plain or HLS through hls.js) with the layer over it. */
  const sitePage = async (name: string, options: { hls: boolean; layer: Record<string, string>; sdk: 'iife-pinned' | 'esm' }): Promise<Page> => {
    const index = await sdkIndex();
    const iife = index.files.find((f) => f.format === 'iife');
    assert.ok(iife);
    const attrs = Object.entries(options.layer)
      .map(([k, v]) => `${k}="${v}"`)
      .join(' ');
    const sdkTag =
      options.sdk === 'esm'
        ? `<script type="module">import '${system.url}/sdk/danmaku.js';</script>`
        : `<script src="${system.url}${iife.url}" integrity="${iife.integrity}" crossorigin="anonymous"></script>`;
    const source = options.hls
      ? `<script src="hls.min.js"></script><script>const h = new Hls(); h.loadSource('media/hls/index.m3u8'); h.attachMedia(document.getElementById('v'));</script>`
      : '';
    writeFileSync(
      join(dir, `${name}.html`),
      `<!doctype html><html><head><meta charset="utf-8"><title>a blog</title>
<style>body { margin: 0; font-family: sans-serif; } #wrap { margin: 40px 0 0 60px; } video { width: 640px; height: 360px; background: #000; }</style></head>
<body><h1>A blog post with a video</h1><div id="wrap"><video id="v" muted ${options.hls ? '' : 'src="media/clip.webm"'}></video></div>
${source}${sdkTag}
<danmaku-layer id="layer" server="${system.url}" for="v" ${attrs}></danmaku-layer>
</body></html>`,
    );
    const page = await browser.newPage();
    watchPage(page, name, { pageErrors, cspViolations });
    await page.goto(`${siteOrigin}/${name}.html`);
    await page.waitForFunction(() => customElements.get('danmaku-layer') !== undefined);
    await page.waitForFunction(() => (document.getElementById('v') as HTMLVideoElement).readyState >= 1);
    return page;
  };

  const boxOf = (page: Page, selector: string) =>
    page.$eval(selector, (el) => {
      const r = el.getBoundingClientRect();
      return { left: r.left, top: r.top, width: r.width, height: r.height };
    });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'danmaku-layer-'));
    mkdirSync(join(dir, 'media'));
    makeTestVideos(join(dir, 'media'), 10);
    copyFileSync(require.resolve('hls.js/dist/hls.min.js'), join(dir, 'hls.min.js'));
    site = Fastify();
    await site.register(fastifyStatic, { root: dir });
    await site.listen({ host: '127.0.0.1', port: 0 });
    const address = site.server.address();
    siteOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    // The blog is allowed to call the API and the socket.io endpoint from its pages.
    config = testConfig({ rateUserMax: 1000, rateIpMax: 1000, corsOrigins: [siteOrigin] });
    system = await startStandalone(config, logger);
    browser = await launchChromium(join(dir, 'profile'), ['--autoplay-policy=no-user-gesture-required']);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await site?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('/sdk/: hashed immutable builds, plain names redirect, CORS *, SRI hashes that match', async () => {
    const { files } = await sdkIndex();
    assert.deepEqual(files.map((f) => f.name).sort(), ['danmaku.iife.js', 'danmaku.js']);
    for (const f of files) {
      assert.match(f.file, /^danmaku(\.iife)?\.[0-9a-f]{16}\.js$/);
      const plain = await fetch(`${system.url}/sdk/${f.name}`, { redirect: 'manual', headers: { origin: siteOrigin } });
      assert.equal(plain.status, 302);
      assert.equal(plain.headers.get('location'), `/sdk/${f.file}`);
      const built = await fetch(`${system.url}${f.url}`, { headers: { origin: siteOrigin } });
      assert.equal(built.status, 200);
      assert.equal(built.headers.get('access-control-allow-origin'), '*');
      assert.match(built.headers.get('cache-control') ?? '', /immutable/);
      assert.match(built.headers.get('content-type') ?? '', /javascript/);
      const { createHash } = await import('node:crypto');
      assert.equal(`sha384-${createHash('sha384').update(Buffer.from(await built.arrayBuffer())).digest('base64')}`, f.integrity);
    }
    const html = await (await fetch(`${system.url}/sdk/`)).text();
    for (const f of files) assert.ok(html.includes(f.file) && html.includes(f.integrity), 'the index lists each file with its SRI hash');
    const missing = await fetch(`${system.url}/sdk/danmaku.0000000000000000.js`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'not_found');
  });

  it('live over a plain <video>: comments sent over HTTP fly over it; it follows a resize', async () => {
    const roomId = uniqueRoom('layer');
    const page = await sitePage('plain-live', { hls: false, sdk: 'iife-pinned', layer: { room: roomId, 'font-size': '26', speed: '160' } });
    await page.waitForFunction(() => document.getElementById('layer')?.dataset.mode === 'long');
    const lines = ['前方高能 over your video', 'hello from another origin 🎉', 'top one', 'bottom one'];
    for (const [i, line] of lines.entries()) {
      const mode = line.startsWith('top') ? 'top' : line.startsWith('bottom') ? 'bottom' : undefined;
      const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${tokenFor(`fan-${i}`, 'viewer')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: line, ...(mode ? { mode } : {}) }),
      });
      assert.equal(res.status, 202, await res.text());
    }
    await page.waitForFunction(
      (n) => (document.getElementById('layer')?.shadowRoot?.querySelectorAll('.danmaku:not(.measuring)').length ?? 0) >= n,
      lines.length,
    );
    const video = await boxOf(page, '#v');
    const layer = await boxOf(page, '#layer');
    assert.deepEqual(layer, video, 'the layer covers exactly the video');
    const items = await drawnItems(page, '.stage', '#layer');
    assert.deepEqual(items.map((i) => i.text).sort(), [...lines].sort());
    assert.deepEqual(overlaps(items), []);
    for (const item of items) assert.ok(item.top >= video.top && item.bottom <= video.top + video.height, `${item.text} over the video`);
    assert.equal(await page.$eval('#layer', (el) => getComputedStyle(el.shadowRoot?.querySelector('.danmaku') as Element).fontSize), '26px');

    // The site resizes its player: the layer follows.
    await page.evaluate(() => {
      (document.getElementById('v') as HTMLVideoElement).style.width = '800px';
      (document.getElementById('v') as HTMLVideoElement).style.height = '450px';
    });
    await page.waitForFunction(() => (document.getElementById('layer') as HTMLElement).getBoundingClientRect().width === 800);
    assert.deepEqual(await boxOf(page, '#layer'), await boxOf(page, '#v'));

    // A container put fullscreen takes the layer in, and gives it back on exit.
    await page.evaluate(() => {
      const button = document.createElement('button');
      button.id = 'fs';
      button.textContent = 'fullscreen';
      button.addEventListener('click', () => void document.getElementById('wrap')?.requestFullscreen());
      document.body.prepend(button);
    });
    await page.click('#fs');
    await page.waitForFunction(() => document.fullscreenElement?.id === 'wrap' && document.getElementById('layer')?.parentElement?.id === 'wrap');
    await page.waitForFunction(() => {
      const a = (document.getElementById('layer') as HTMLElement).getBoundingClientRect();
      const b = (document.getElementById('v') as HTMLElement).getBoundingClientRect();
      return Math.abs(a.left - b.left) < 1 && Math.abs(a.top - b.top) < 1 && Math.abs(a.width - b.width) < 1;
    });
    await page.evaluate(() => document.exitFullscreen());
    await page.waitForFunction(() => document.fullscreenElement === null && document.getElementById('layer')?.parentElement === document.body);

    // Options changed on the element restart it: a send box with a token, gifts left out, half opacity.
    await page.evaluate((token) => {
      const layer = document.getElementById('layer') as HTMLElement;
      layer.setAttribute('token', token);
      layer.setAttribute('send', '');
      layer.setAttribute('types', 'comment');
      layer.setAttribute('opacity', '0.5');
    }, tokenFor('site-viewer', 'viewer'));
    await page.waitForFunction(() => document.getElementById('layer')?.dataset.mode === 'long' && document.getElementById('layer')?.shadowRoot?.querySelector('form') !== null);
    assert.equal(await page.$eval('#layer', (el) => getComputedStyle(el.shadowRoot?.querySelector('.stage') as Element).opacity), '0.5');
    // Playwright's CSS engine reads open shadow roots: the box is typed into as a viewer would.
    await page.fill('#layer input', 'sent from the layer 👋');
    await page.click('#layer button');
    await page.waitForFunction(() => Array.from(document.getElementById('layer')?.shadowRoot?.querySelectorAll('.danmaku') ?? []).some((el) => el.textContent === 'sent from the layer 👋'));
    assert.equal(await page.inputValue('#layer input'), '', 'the box is cleared once sent');
    const gift = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('whale', 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'gift', giftId: 'rocket', count: 1 }),
    });
    assert.equal(gift.status, 202);
    // Stored (and so pushed) before the next comment is even sent.
    await waitFor('the gift stored', async () => {
      const gifts = (await (await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=gift`)).json()) as { messages: unknown[] };
      return gifts.messages.length === 1;
    });
    await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('fan-late', 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: 'after the gift' }),
    });
    await page.waitForFunction(() => Array.from(document.getElementById('layer')?.shadowRoot?.querySelectorAll('.danmaku') ?? []).some((el) => el.textContent === 'after the gift'));
    assert.equal(await page.locator('#layer .danmaku.gift').count(), 0, 'types="comment": no gifts drawn');
    const poll = (await (await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=comment`)).json()) as { messages: { content: string; user: { id: string } }[] };
    assert.ok(poll.messages.some((m) => m.content === 'sent from the layer 👋' && m.user.id === 'site-viewer'), 'the server has it, from the token\'s user');
    await page.close();
  });

  describe('replay timed by the video', () => {
    const planned = [
      { text: 'at one', offsetMs: 1000 },
      { text: 'at two-five', offsetMs: 2500 },
      { text: 'at four-two', offsetMs: 4200 },
      { text: 'top at four-eight A', offsetMs: 4800, mode: 'top' },
      { text: 'top at four-eight B', offsetMs: 4800, mode: 'top' },
      { text: 'bottom at four-nine', offsetMs: 4900, mode: 'bottom' },
      { text: 'at five exactly', offsetMs: 5000 },
      { text: 'at five-two, not yet', offsetMs: 5200 },
      { text: 'at seven', offsetMs: 7000 },
      { text: 'top at half, gone by five', offsetMs: 500, mode: 'top' },
    ];
    const atFive = planned.filter((c) => c.offsetMs <= 5000 && !(c.mode && c.offsetMs + 4000 <= 5000)).map((c) => c.text);
    let liveId: string;

    before(async () => {
      const roomId = uniqueRoom('layerrec');
      liveId = `lvlayer${Date.now().toString(36)}`;
      const startedAt = Date.now() - 60_000;
      const archive = new Archive(config.mysqlUrl);
      await archive.ready();
      await archive.recordLiveStart({ liveId, roomId, startedAt, endedAt: null }, 'host');
      await archive.recordLiveEnd(liveId, startedAt + 10_000);
      const rows = planned.map((c, i) => {
        const row = toArchiveRow(
          JSON.stringify({ id: `${liveId}m${i}`, roomId, type: 'comment', ts: startedAt + c.offsetMs, user: { id: `u${i}`, name: `U${i}` }, content: c.text, liveId, offsetMs: c.offsetMs, ...(c.mode ? { mode: c.mode } : {}) }),
        );
        assert.ok(row);
        return row;
      });
      assert.equal(await archive.insert(rows), rows.length);
      await archive.close();
    });

    for (const hls of [false, true]) {
      it(`${hls ? 'HLS through hls.js' : 'a plain <video>'}: paused at 0:05 shows exactly the comments of 0:05, then plays on`, async () => {
        const page = await sitePage(hls ? 'hls-replay' : 'plain-replay', { hls, sdk: hls ? 'esm' : 'iife-pinned', layer: { live: liveId } });
        if (hls) assert.ok(await page.$eval('#v', (v) => (v as HTMLVideoElement).currentSrc.startsWith('blob:')), 'hls.js feeds the video');
        // Play a little first, then seek and pause, as a viewer would.
        await page.evaluate(() => void (document.getElementById('v') as HTMLVideoElement).play());
        await page.waitForFunction(() => (document.getElementById('v') as HTMLVideoElement).currentTime > 1.2);
        await page.waitForFunction(() => Array.from(document.getElementById('layer')?.shadowRoot?.querySelectorAll('.danmaku') ?? []).some((el) => el.textContent === 'at one'));
        await page.evaluate(() => {
          const v = document.getElementById('v') as HTMLVideoElement;
          v.pause();
          v.currentTime = 5;
        });
        await page.waitForFunction(() => {
          const v = document.getElementById('v') as HTMLVideoElement;
          return !v.seeking && v.paused && Math.abs(v.currentTime - 5) < 0.05;
        });
        await page.waitForFunction(
          (n) => (document.getElementById('layer')?.shadowRoot?.querySelectorAll('.danmaku:not(.measuring)').length ?? 0) >= n,
          atFive.length,
        );
        await page.waitForTimeout(300);
        const items = await drawnItems(page, '.stage', '#layer');
        assert.deepEqual(items.map((i) => i.text).sort(), [...atFive].sort());
        assert.deepEqual(overlaps(items), []);
        // A scrolling comment has flown (5 s - its offset) at 140 px/s from the right edge.
        const layer = await boxOf(page, '#layer');
        const one = items.find((i) => i.text === 'at one');
        assert.ok(one && Math.abs(one.left - (layer.left + layer.width - 140 * 4)) < 30, JSON.stringify(one));
        // Paused means still.
        await page.waitForTimeout(500);
        assert.equal((await drawnItems(page, '.stage', '#layer')).find((i) => i.text === 'at one')?.left, one.left);

        // Playing at 2x: the next comments come when the video's clock reaches them.
        await page.evaluate(() => {
          const seen: Record<string, number> = {};
          (window as unknown as { __seen: Record<string, number> }).__seen = seen;
          const v = document.getElementById('v') as HTMLVideoElement;
          new MutationObserver((records) => {
            for (const r of records) r.addedNodes.forEach((n) => (seen[n.textContent ?? ''] ??= v.currentTime));
          }).observe(document.getElementById('layer')?.shadowRoot?.querySelector('.stage') as Element, { childList: true });
          v.playbackRate = 2;
          void v.play();
        });
        const seen = await page.waitForFunction(() => (window as unknown as { __seen: Record<string, number> }).__seen['at seven'], undefined, { timeout: 20_000 });
        const t = Number(await seen.jsonValue());
        // Never early; late only by the layer's tick (100 ms, 200 ms of video at 2x) and a loaded machine.
        assert.ok(t >= 7 && t < 9, `"at seven" drawn at video time ${t}`);
        const rate = await page.$eval('#layer', (el) => (el.shadowRoot?.querySelector('.danmaku') as HTMLElement).getAnimations()[0]?.playbackRate);
        assert.equal(rate, 2);
        await page.close();
      });
    }
  });

  after(() => {
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });
});
