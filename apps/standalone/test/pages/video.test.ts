/**
 * Video in sync and the OBS overlay, in Debian's Chromium (playwright-core) against the
 * standalone system: a WebM test clip made here with Debian's ffmpeg, served by a second server
 * (another origin, as a CDN would be); the viewer plays it under the danmaku; replay times every
 * comment by the recording's own clock; the overlay is transparent and reconnects by itself.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastifyStatic from '@fastify/static';
import Fastify, { type FastifyInstance } from 'fastify';
import type { BrowserContext, Page } from 'playwright-core';
import { PNG } from 'pngjs';
import { Archive, toArchiveRow } from '@danmaku/archive';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { freePort, REPO_ROOT, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { launchChromium, watchPage } from './browser.js';
import { makeTestVideos } from './media.js';
import type { Config } from '@danmaku/config';

const EXTRA_ARGS = [
  // A page test plays video with no click; a browser source (OBS) does the same.
  '--autoplay-policy=no-user-gesture-required',
];
const CLIP_SECONDS = 10;

interface Box {
  left: number;
  right: number;
  top: number;
  bottom: number;
  width: number;
}

describe('video in sync and the OBS overlay in Chromium', () => {
  let system: Standalone;
  let config: Config;
  let media: FastifyInstance;
  let mediaUrl: string;
  let mediaOrigin: string;
  let browser: BrowserContext;
  let dir: string;
  const logger = createLogger('test', 'silent');
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const call = async (path: string, token: string | null, body?: unknown, method = 'POST'): Promise<Response> =>
    fetch(`${system.url}${path}`, {
      method,
      headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const say = async (roomId: string, token: string, content: string): Promise<void> => {
    const res = await call(`/v1/rooms/${roomId}/messages`, token, { type: 'comment', content });
    assert.equal(res.status, 202, await res.clone().text());
  };
  const openPage = async (path: string, viewport?: { width: number; height: number }): Promise<Page> => {
    const page = await browser.newPage();
    if (viewport) await page.setViewportSize(viewport);
    watchPage(page, path, { pageErrors, cspViolations });
    await page.goto(`${system.url}${path}`);
    return page;
  };
  const shot = (page: Page, name: string, options: { omitBackground?: boolean } = {}): Promise<Buffer> => {
    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    return page.screenshot({ path: join(REPO_ROOT, '.run', name), ...options });
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'danmaku-video-'));
    makeTestVideos(dir, CLIP_SECONDS);
    media = Fastify();
    // As a video CDN does: hls.js reads playlists and segments with fetch, across origins.
    media.addHook('onSend', async (_request, reply) => {
      reply.header('access-control-allow-origin', '*');
    });
    await media.register(fastifyStatic, { root: dir, prefix: '/media/' });
    await media.listen({ host: '127.0.0.1', port: 0 });
    const address = media.server.address();
    mediaOrigin = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    mediaUrl = `${mediaOrigin}/media/clip.webm`;

    // A fixed port: the overlay test restarts the server where the page expects it. The media
    // server's origin stands for a blog that embeds the viewer.
    const port = await freePort();
    config = testConfig({ port, rateUserMax: 1000, rateIpMax: 1000, frameAncestors: ["'self'", mediaOrigin] });
    writeFileSync(
      join(dir, 'embed.html'),
      `<!doctype html><iframe id="viewer" src="http://127.0.0.1:${port}/rooms/embedded"></iframe><iframe id="studio" src="http://127.0.0.1:${port}/studio/embedded"></iframe>`,
    );
    system = await startStandalone(config, logger);
    browser = await launchChromium(join(dir, 'profile'), EXTRA_ARGS);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await media?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('viewer: the live video plays under the danmaku (a link set at the start of the live)', async () => {
    const roomId = uniqueRoom('video');
    const streamer = tokenFor('host', 'streamer', [roomId]);
    const started = await call(`/v1/rooms/${roomId}/lives`, streamer, { playbackUrl: mediaUrl });
    assert.equal(started.status, 201, await started.clone().text());

    const page = await openPage(`/rooms/${roomId}`);
    await page.waitForFunction(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return !v.hidden && !v.paused && v.readyState >= 2 && v.currentTime > 0.3;
    });
    assert.equal(await page.$eval('#player', (v) => (v as HTMLVideoElement).currentSrc), mediaUrl);

    const lines = ['前方高能', 'this clip 🔥🔥', 'hello from under the video', '666', 'GG wp'];
    for (const [i, line] of lines.entries()) await say(roomId, tokenFor(`fan-${i}`, 'viewer'), line);
    const last = page.locator('#stage .danmaku', { hasText: 'GG wp' });
    await last.waitFor();
    // The danmaku are over the picture: inside the video's box, and painted after it.
    const { videoBox, itemBox, stageAfterVideo } = await page.evaluate(() => {
      const v = document.getElementById('player') as HTMLElement;
      const item = Array.from(document.querySelectorAll('#stage .danmaku')).find((el) => el.textContent === 'GG wp') as HTMLElement;
      const stage = document.getElementById('stage') as HTMLElement;
      // No named helpers in here: the test's compiled helper names do not exist in the page.
      const boxes = [v, item].map((el) => {
        const r = el.getBoundingClientRect();
        return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width };
      });
      return { videoBox: boxes[0] as Box, itemBox: boxes[1] as Box, stageAfterVideo: Boolean(v.compareDocumentPosition(stage) & Node.DOCUMENT_POSITION_FOLLOWING) };
    });
    assert.ok(itemBox.top >= videoBox.top && itemBox.bottom <= videoBox.bottom, `${JSON.stringify(itemBox)} in ${JSON.stringify(videoBox)}`);
    assert.ok(stageAfterVideo, 'the stage comes after the video, so it is drawn on top');
    const playedAt = await page.$eval('#player', (v) => (v as HTMLVideoElement).currentTime);
    // Played on a while (more danmaku in the picture) before the screenshot.
    await page.waitForFunction((t) => (document.getElementById('player') as HTMLVideoElement).currentTime > t + 1.1, playedAt);
    await shot(page, 'viewer-video.png');

    // An HLS link instead: Chromium has no native HLS, so hls.js feeds the video (a blob: source).
    const { liveId } = (await started.json()) as { liveId: string };
    const hls = await call(`/v1/rooms/${roomId}/lives/${liveId}`, streamer, { playbackUrl: `${mediaOrigin}/media/hls/index.m3u8` }, 'PATCH');
    assert.equal(hls.status, 200, await hls.clone().text());
    await page.reload();
    await page.waitForFunction(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return !v.hidden && v.readyState >= 2 && v.currentTime > 0.3 && v.currentSrc.startsWith('blob:');
    });

    // The streamer takes the link away: the page goes back to the empty panel.
    assert.equal((await call(`/v1/rooms/${roomId}/lives/${liveId}`, streamer, { playbackUrl: null }, 'PATCH')).status, 200);
    await page.reload();
    await page.locator('#live-status', { hasText: 'LIVE' }).waitFor();
    // The viewer list is drawn after the live's video record was read and applied.
    await page.locator('#viewer-count', { hasText: /\(\d+\)/ }).waitFor();
    assert.equal(await page.$eval('#player', (v) => (v as HTMLVideoElement).hidden), true);
    await page.close();
  });

  it('replay: comments follow the recording through seek, pause and rate; colour and top/bottom drawn', async () => {
    const roomId = uniqueRoom('rec');
    const streamer = tokenFor('host', 'streamer', [roomId]);
    // A finished 12 s live with comments at known offsets, written to the archive directly so
    // the offsets are exact (a live sent in real time would place them within a tick).
    const archive = new Archive(config.mysqlUrl);
    const liveId = `lvtest${Date.now().toString(36)}`;
    const startedAt = Date.now() - 20_000;
    await archive.ready();
    await archive.recordLiveStart({ liveId, roomId, startedAt, endedAt: null }, 'host');
    await archive.recordLiveEnd(liveId, startedAt + 12_000);
    const comments: { text: string; offsetMs: number; color?: string; mode?: 'top' | 'bottom' }[] = [
      { text: 'at 0.5 top, gone by 5', offsetMs: 500, mode: 'top' },
      { text: 'at one', offsetMs: 1000 },
      { text: 'at two-five', offsetMs: 2500 },
      { text: 'at four-two red', offsetMs: 4200, color: '#ff0000' },
      { text: 'at four-eight top', offsetMs: 4800, mode: 'top', color: '#00ff00' },
      { text: 'at four-nine bottom', offsetMs: 4900, mode: 'bottom' },
      { text: 'at six', offsetMs: 6000 },
      { text: 'at eight', offsetMs: 8000 },
    ];
    const rows = comments.map((c, i) => {
      const id = `${liveId}m${i}`;
      const body = {
        id,
        roomId,
        type: 'comment',
        ts: startedAt + c.offsetMs,
        user: { id: `u${i}`, name: `User ${i}` },
        content: c.text,
        liveId,
        offsetMs: c.offsetMs,
        ...(c.color ? { color: c.color } : {}),
        ...(c.mode ? { mode: c.mode } : {}),
      };
      const row = toArchiveRow(JSON.stringify(body));
      assert.ok(row);
      return row;
    });
    assert.equal(await archive.insert(rows), rows.length);
    await archive.close();
    const set = await call(`/v1/rooms/${roomId}/lives/${liveId}`, streamer, { recordingUrl: mediaUrl }, 'PATCH');
    assert.equal(set.status, 200, await set.clone().text());

    const page = await openPage(`/replay/${liveId}`);
    await page.waitForFunction(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return !v.hidden && v.readyState >= 1;
    });
    await page.locator('#replay-state', { hasText: 'paused' }).waitFor();
    await page.click('#play');
    await page.waitForFunction(() => (document.getElementById('player') as HTMLVideoElement).currentTime > 1.2);
    await page.locator('#stage .danmaku', { hasText: 'at one' }).waitFor();

    // Seek to 0:05 and pause, as a viewer would with the player's controls.
    await page.evaluate(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      v.currentTime = 5;
      v.pause();
    });
    await page.waitForFunction(() => {
      const v = document.getElementById('player') as HTMLVideoElement;
      return !v.seeking && v.paused && Math.abs(v.currentTime - 5) < 0.05;
    });
    await page.locator('#stage .danmaku', { hasText: 'at four-nine bottom' }).waitFor();
    await page.waitForTimeout(400);
    const screen = async () =>
      page.evaluate(() => {
        const stage = (document.getElementById('stage') as HTMLElement).getBoundingClientRect();
        return {
          stage: { left: stage.left, right: stage.right, top: stage.top, bottom: stage.bottom, width: stage.width },
          items: Array.from(document.querySelectorAll<HTMLElement>('#stage .danmaku')).map((el) => {
            const r = el.getBoundingClientRect();
            return { text: el.textContent ?? '', color: getComputedStyle(el).color, box: { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width } };
          }),
        };
      });
    const first = await screen();
    const onScreen = first.items.map((i) => i.text).sort();
    // Those of 0:05: everything sent before it that is still in flight (a scroll takes longer
    // than 5 s to cross this stage), the top/bottom ones of the last 4 s; nothing later.
    assert.deepEqual(onScreen, ['at four-eight top', 'at four-nine bottom', 'at four-two red', 'at one', 'at two-five']);
    const item = (text: string) => first.items.find((i) => i.text === text) as { color: string; box: Box };
    // A scrolling comment has flown (5 s - its offset) at 140 px/s from the right edge.
    for (const [text, offsetMs] of [['at one', 1000], ['at two-five', 2500], ['at four-two red', 4200]] as const) {
      const expected = first.stage.right - (140 * (5000 - offsetMs)) / 1000;
      assert.ok(Math.abs(item(text).box.left - expected) < 30, `${text}: left ${item(text).box.left}, expected ${expected}`);
    }
    assert.equal(item('at four-two red').color, 'rgb(255, 0, 0)');
    assert.equal(item('at one').color, 'rgb(255, 255, 255)', 'white by default');
    const top = item('at four-eight top').box;
    const bottom = item('at four-nine bottom').box;
    const centre = (first.stage.left + first.stage.right) / 2;
    assert.equal(item('at four-eight top').color, 'rgb(0, 255, 0)');
    assert.ok(Math.abs((top.left + top.right) / 2 - centre) < 3, 'top comments are centred');
    // The first row is taken by scrolling comments that would run into it: a free one below.
    assert.ok(top.bottom <= (first.stage.top + first.stage.bottom) / 2, 'in the upper half');
    assert.ok(Math.abs((bottom.left + bottom.right) / 2 - centre) < 3, 'bottom comments are centred');
    assert.ok(first.stage.bottom - bottom.bottom < 10, 'in the bottom lane');
    await shot(page, 'replay-video.png');

    // Paused means still: the danmaku do not move while the video does not.
    await page.waitForTimeout(700);
    const later = await screen();
    assert.equal(later.items.find((i) => i.text === 'at one')?.box.left, item('at one').box.left);

    // Play at 2x: every comment still appears when the video's clock reaches its offset.
    await page.evaluate(() => {
      const seen: Record<string, number> = {};
      (window as unknown as { __seen: Record<string, number> }).__seen = seen;
      const v = document.getElementById('player') as HTMLVideoElement;
      new MutationObserver((records) => {
        for (const r of records) r.addedNodes.forEach((n) => (seen[n.textContent ?? ''] ??= v.currentTime));
      }).observe(document.getElementById('stage') as HTMLElement, { childList: true });
      v.playbackRate = 2;
      void v.play();
    });
    await page.locator('#stage .danmaku', { hasText: 'at eight' }).waitFor({ timeout: 30_000 });
    const seen = await page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen);
    for (const [text, at] of [['at six', 6], ['at eight', 8]] as const) {
      const t = seen[text] ?? NaN;
      // Never early. Late only by the page's tick (100 ms, 200 ms of video at 2x) and however long
      // a loaded machine delays it; a late one is still drawn where its offset puts it.
      assert.ok(t >= at && t < at + 2.5, `${text} appeared at video time ${t}`);
    }
    const rate = await page.$eval('#stage .danmaku', (el) => el.getAnimations()[0]?.playbackRate);
    assert.equal(rate, 2, 'the danmaku fly at the video rate');
    await page.close();
  });

  it('framing: a configured origin may embed the viewer, nobody may embed the studio', async () => {
    const page = await browser.newPage();
    const refused: string[] = [];
    page.on('console', (msg) => {
      if (/frame-ancestors/i.test(msg.text())) refused.push(msg.text());
    });
    await page.goto(`${mediaOrigin}/media/embed.html`);
    const viewer = page.frameLocator('#viewer');
    await viewer.locator('#room-name', { hasText: 'embedded' }).waitFor();
    await waitFor('the studio frame refused', async () => refused.length > 0, 10_000);
    assert.equal(refused.length, 1, refused.join('\n'));
    assert.match(refused[0] ?? '', /violates .*"frame-ancestors 'none'"/);
    // Chromium puts an error page in the refused frame: no studio inside.
    const urls = page.frames().map((f) => f.url());
    assert.ok(urls.some((u) => u.startsWith('chrome-error:')), urls.join());
    assert.ok(!urls.some((u) => u.includes('/studio/')), urls.join());
    await page.close();
  });

  it('overlay: transparent, danmaku appear, and it reconnects by itself after the server restarts', async () => {
    const roomId = uniqueRoom('obs');
    const page = await openPage(`/overlay/${roomId}?types=comment,gift,like,notice&fontSize=40&lanes=8&max=50`, { width: 1920, height: 1080 });
    await page.waitForFunction(() => document.documentElement.dataset.mode === 'long');
    await say(roomId, tokenFor('viewer-a', 'viewer'), '第一条弹幕 on the stream 🎉');
    const firstItem = page.locator('#stage .danmaku', { hasText: '第一条弹幕' });
    await firstItem.waitFor();
    assert.equal(await firstItem.evaluate((el) => getComputedStyle(el).fontSize), '40px');
    // A comment's colour and mode, sent through the API: orange, standing centred at the top.
    const styled = await call(`/v1/rooms/${roomId}/messages`, tokenFor('viewer-c', 'viewer'), { type: 'comment', content: 'orange on top', color: '#FF8000', mode: 'top' });
    assert.equal(styled.status, 202, await styled.clone().text());
    const topItem = page.locator('#stage .danmaku', { hasText: 'orange on top' });
    await topItem.waitFor();
    const drawn = await topItem.evaluate((el) => {
      const r = el.getBoundingClientRect();
      return { color: getComputedStyle(el).color, centre: (r.left + r.right) / 2, top: r.top, mode: el.dataset.mode };
    });
    assert.equal(drawn.color, 'rgb(255, 128, 0)');
    assert.equal(drawn.mode, 'top');
    assert.ok(Math.abs(drawn.centre - 960) < 3 && drawn.top < 60, JSON.stringify(drawn));
    const like = await call(`/v1/rooms/${roomId}/likes`, tokenFor('viewer-a', 'viewer'), { count: 3 });
    assert.equal(like.status, 202, await like.clone().text());
    await page.locator('#likes', { hasText: '❤ 3' }).waitFor({ timeout: 30_000 });
    const gift = await call(`/v1/rooms/${roomId}/messages`, tokenFor('whale', 'viewer'), { type: 'gift', giftId: 'rocket', count: 2 });
    assert.equal(gift.status, 202);
    await page.locator('#stage .danmaku.gift', { hasText: 'sent a rocket' }).waitFor();
    // The pinned notice, shown as text: markup in it stays markup-looking text.
    const notice = '<b>no spoilers</b> 🙏';
    const pinned = await call(`/v1/rooms/${roomId}/notice`, tokenFor('host', 'streamer', [roomId]), { content: notice });
    assert.equal(pinned.status, 201, await pinned.clone().text());
    await page.locator('#notice', { hasText: 'no spoilers' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.textContent('#notice'), notice);
    assert.equal(await page.locator('b').count(), 0, 'no element made from the notice');

    // The likes drawn before the boxes are read, so the screenshot has nothing they do not cover.
    await page.locator('#likes', { hasText: '❤ 3' }).waitFor({ timeout: 30_000 });
    // Freeze the flight so the boxes read now are where the screenshot draws them: a comment
    // passing a corner would otherwise make the transparency check depend on timing.
    const drawnBoxes = await page.evaluate(() => {
      for (const animation of document.getAnimations()) animation.pause();
      return Array.from(document.querySelectorAll<HTMLElement>('#stage .danmaku, #notice, #likes'))
        .map((el) => el.getBoundingClientRect())
        .filter((r) => r.width > 0 && r.height > 0)
        .map((r) => ({ left: r.left, top: r.top, right: r.right, bottom: r.bottom }));
    });
    assert.ok(drawnBoxes.length >= 2, JSON.stringify(drawnBoxes));
    const png = PNG.sync.read(await shot(page, 'overlay.png', { omitBackground: true }));
    assert.equal(png.width, 1920);
    const alpha = (x: number, y: number) => png.data[(png.width * y + x) * 4 + 3];
    // Everywhere outside what is drawn (with room for the text's shadow) is see-through.
    const SHADOW_PX = 16;
    const covered = (x: number, y: number) =>
      drawnBoxes.some((b) => x >= b.left - SHADOW_PX && x <= b.right + SHADOW_PX && y >= b.top - SHADOW_PX && y <= b.bottom + SHADOW_PX);
    let background = 0;
    for (let y = 0; y < png.height; y += 9) {
      for (let x = 0; x < png.width; x += 9) {
        if (covered(x, y)) continue;
        background++;
        assert.equal(alpha(x, y), 0, `transparent at (${x}, ${y}), outside every danmaku`);
      }
    }
    assert.ok(background > 20_000, `most of the frame is background (${background} points checked)`);
    for (const [x, y] of [[0, 0], [png.width - 1, 0], [0, png.height - 1]] as const) {
      if (!covered(x, y)) assert.equal(alpha(x, y), 0, `corner (${x}, ${y}) transparent`);
    }
    await page.evaluate(() => {
      for (const animation of document.getAnimations()) animation.play();
    });
    let opaque = 0;
    for (let i = 3; i < png.data.length; i += 4) if ((png.data[i] ?? 0) > 0) opaque++;
    assert.ok(opaque > 500, `the danmaku are drawn (${opaque} visible pixels)`);

    // The server goes away entirely and comes back on the same port: nobody clicks anything.
    await system.stop();
    await page.waitForFunction(() => document.documentElement.dataset.mode === 'short', undefined, { timeout: 60_000 });
    // The outage lasts a while after the page noticed it: its polls keep failing meanwhile.
    await page.waitForTimeout(1500);
    system = await startStandalone(config, logger);
    await say(roomId, tokenFor('viewer-b', 'viewer'), 'after the restart');
    await page.locator('#stage .danmaku', { hasText: 'after the restart' }).waitFor({ timeout: 60_000 });
    // And back to the long connection, not left polling.
    await page.waitForFunction(() => document.documentElement.dataset.mode === 'long', undefined, { timeout: 60_000 });
    await say(roomId, tokenFor('viewer-b', 'viewer'), 'over the socket again');
    await page.locator('#stage .danmaku', { hasText: 'over the socket again' }).waitFor({ timeout: 30_000 });
    await page.close();

    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, [], 'the video, replay and overlay pages ran under their CSP');
  });
});
