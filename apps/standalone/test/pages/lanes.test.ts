/**
 * Lanes on our pages, in Debian's Chromium against the standalone system: the drawn boxes of the
 * danmaku (getBoundingClientRect) never intersect, read at sampled moments on the replay page
 * (paused at 0:05 with several top and bottom comments of the same instant, then playing), the
 * viewer page (a burst of every mode at once) and the OBS overlay (more comments than lanes, so
 * they queue).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { Archive, toArchiveRow } from '@danmaku/archive';
import type { Config } from '@danmaku/config';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { drawnItems, launchChromium, overlaps, watchPage, type DrawnItem } from './browser.js';

interface Planned {
  text: string;
  offsetMs: number;
  mode?: 'top' | 'bottom';
  color?: string;
}

/** Reads the drawn boxes every `everyMs` for `forMs`, asserting no two intersect at any of them. */
async function sampleNoOverlap(page: Page, stageSelector: string, forMs: number, everyMs = 200, host?: string): Promise<DrawnItem[][]> {
  const samples: DrawnItem[][] = [];
  const end = Date.now() + forMs;
  while (Date.now() < end) {
    const items = await drawnItems(page, stageSelector, host);
    assert.deepEqual(overlaps(items), [], `at sample ${samples.length}: ${JSON.stringify(items)}`);
    samples.push(items);
    await page.waitForTimeout(everyMs);
  }
  return samples;
}

describe('danmaku lanes: no two drawn boxes intersect', () => {
  let system: Standalone;
  let config: Config;
  let browser: BrowserContext;
  let profile: string;
  const logger = createLogger('test', 'silent');
  const pageErrors: string[] = [];
  const cspViolations: string[] = [];

  const send = async (roomId: string, who: string, body: Record<string, unknown>): Promise<void> => {
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor(who, 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202, await res.text());
  };
  const openPage = async (path: string, viewport?: { width: number; height: number }): Promise<Page> => {
    const page = await browser.newPage();
    if (viewport) await page.setViewportSize(viewport);
    watchPage(page, path, { pageErrors, cspViolations });
    await page.goto(`${system.url}${path}`);
    return page;
  };

  before(async () => {
    config = testConfig({ rateUserMax: 1000, rateIpMax: 1000 });
    system = await startStandalone(config, logger);
    profile = mkdtempSync(join(tmpdir(), 'danmaku-lanes-'));
    browser = await launchChromium(profile);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('replay: paused at 0:05 with two top comments of one instant, then playing', async () => {
    const roomId = uniqueRoom('lanes');
    const liveId = `lvlanes${Date.now().toString(36)}`;
    const startedAt = Date.now() - 30_000;
    const planned: Planned[] = [
      { text: 'scroll at one', offsetMs: 1000 },
      { text: 'scroll at two-five, somewhat longer than the others', offsetMs: 2500 },
      { text: '前方高能 at three', offsetMs: 3000 },
      { text: 'at four-two A', offsetMs: 4200 },
      { text: 'at four-two B 🔥', offsetMs: 4200 },
      { text: 'at four-two C', offsetMs: 4200, color: '#ff0000' },
      { text: 'top at four', offsetMs: 4000, mode: 'top' },
      { text: 'top at four-eight, first', offsetMs: 4800, mode: 'top', color: '#00ff00' },
      { text: 'top at four-eight, second', offsetMs: 4800, mode: 'top' },
      { text: 'bottom at four-nine, first', offsetMs: 4900, mode: 'bottom' },
      { text: 'bottom at four-nine, second', offsetMs: 4900, mode: 'bottom' },
      { text: 'scroll at four-nine', offsetMs: 4900 },
      { text: 'scroll at five-five', offsetMs: 5500 },
      { text: 'top at five-five', offsetMs: 5500, mode: 'top' },
      { text: 'scroll at six', offsetMs: 6000 },
    ];
    const archive = new Archive(config.mysqlUrl);
    await archive.ready();
    await archive.recordLiveStart({ liveId, roomId, startedAt, endedAt: null }, 'host');
    await archive.recordLiveEnd(liveId, startedAt + 12_000);
    const rows = planned.map((c, i) => {
      const body = {
        id: `${liveId}m${i}`,
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

    // No recording: the page's own clock is the video; its range is the seek bar.
    // Large enough for the top comments of 0:04-0:05 to find free rows in the upper half.
    const page = await openPage(`/replay/${liveId}`, { width: 1600, height: 1000 });
    await page.locator('#clock', { hasText: '/ 0:12' }).waitFor();
    await page.evaluate(() => {
      const range = document.getElementById('timeline') as HTMLInputElement;
      range.value = '5000';
      range.dispatchEvent(new Event('input'));
    });
    await page.locator('#stage .danmaku', { hasText: 'bottom at four-nine, second' }).waitFor();
    await page.waitForTimeout(300);
    const paused = await drawnItems(page, '#stage');
    assert.deepEqual(overlaps(paused), [], JSON.stringify(paused));
    // Exactly the comments of 0:05: every one sent by then still in its time on screen (a top or
    // bottom one stands 4 s), none after.
    const due = planned.filter((c) => c.offsetMs <= 5000 && (c.mode === undefined || c.offsetMs > 1000)).map((c) => c.text);
    assert.deepEqual(paused.map((i) => i.text).sort(), due.sort(), JSON.stringify(paused));
    const tops = paused.filter((i) => i.mode === 'top');
    assert.equal(tops.length, 3);
    const stage = await page.$eval('#stage', (el) => {
      const r = el.getBoundingClientRect();
      return { top: r.top, bottom: r.bottom, middle: (r.top + r.bottom) / 2 };
    });
    for (const item of paused) {
      if (item.mode === 'top') assert.ok(item.bottom <= stage.middle, `${item.text} in the upper half`);
      if (item.mode === 'bottom') assert.ok(item.top >= stage.middle && stage.bottom - item.bottom < 60, `${item.text} at the bottom`);
    }

    // Playing: what arrives later finds lanes around what is drawn.
    await page.click('#play');
    const samples = await sampleNoOverlap(page, '#stage', 3500);
    const seen = new Set(samples.flat().map((i) => i.text));
    for (const text of ['scroll at five-five', 'top at five-five', 'scroll at six']) assert.ok(seen.has(text), `${text} drawn while playing`);
    await page.close();
  });

  it('viewer: a burst of scrolling, top and bottom comments at once', async () => {
    const roomId = uniqueRoom('lanes');
    const page = await openPage(`/rooms/${roomId}`);
    await page.locator('#mode', { hasText: 'live (socket)' }).waitFor();
    const sent: string[] = [];
    await Promise.all(
      Array.from({ length: 36 }, (_, i) => {
        const mode = i % 4 === 1 ? 'top' : i % 4 === 3 ? 'bottom' : undefined;
        const text = `${mode ?? 'scroll'} ${i}${i % 5 === 0 ? ' 弹幕弹幕 with a longer tail 🎉' : ''}`;
        sent.push(text);
        return send(roomId, `fan-${i}`, { type: 'comment', content: text, ...(mode ? { mode } : {}) });
      }),
    );
    await page.locator('#stage .danmaku', { hasText: 'scroll 0' }).waitFor();
    const samples = await sampleNoOverlap(page, '#stage', 6000, 150);
    const seen = new Set(samples.flat().map((i) => i.text));
    // The stage has room for far more than its 6 s take: most were drawn, waiting or not.
    assert.ok(seen.size >= 30, `${seen.size} of ${sent.length} drawn: ${[...seen].join(', ')}`);
    for (const text of seen) assert.ok(sent.includes(text), text);
    await page.close();
  });

  it('overlay: more comments than lanes wait for a lane, never drawn over one another', async () => {
    const roomId = uniqueRoom('lanes');
    const page = await openPage(`/overlay/${roomId}?fontSize=40&lanes=3&speed=600`, { width: 1920, height: 1080 });
    await page.waitForFunction(() => document.documentElement.dataset.mode === 'long');
    const texts = Array.from({ length: 24 }, (_, i) => `overlay ${i} ${'='.repeat((i % 7) + 1)}`);
    for (const [i, text] of texts.entries()) await send(roomId, `obs-${i}`, { type: 'comment', content: text, ...(i % 6 === 5 ? { mode: 'top' } : {}) });
    const seen = new Set<string>();
    const deadline = Date.now() + 30_000;
    // Three scrolling lanes at 600 px/s: the queue drains in a few seconds, a lane at a time.
    while (!texts.every((t) => seen.has(t)) && Date.now() < deadline) {
      const items = await drawnItems(page, '#stage');
      assert.deepEqual(overlaps(items), [], JSON.stringify(items));
      for (const item of items) seen.add(item.text);
      await page.waitForTimeout(50);
    }
    assert.deepEqual(texts.filter((t) => !seen.has(t)), [], 'every comment drawn in the end');
    await page.close();
    assert.deepEqual(pageErrors, []);
    assert.deepEqual(cspViolations, []);
  });
});
