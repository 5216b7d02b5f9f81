/**
 * The pages' side of danmaku files, in Debian's Chromium against the standalone system: the
 * studio imports a Bilibili XML file into the room's last live; the replay page draws the
 * density curve over its seek bar (the burst where it is, nothing where there is nothing), a
 * click on the curve seeks there, and the page links the ASS and XML files.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, startRedis, testConfig, tokenFor, uniqueRoom, type TestRedis } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { launchChromium, paintedHeights, watchPage } from './browser.js';

/** 40 comments in a burst at 30-32 s, 2 at 5 s, one at 59 s: the shape the curve must have. */
function danmakuFile(): string {
  const rows: string[] = [];
  for (let i = 0; i < 40; i++) rows.push(`<d p="${30 + i / 20},1,25,16777215,1600000000,0,ab${i},${1000 + i}">burst ${i}</d>`);
  for (let i = 0; i < 2; i++) rows.push(`<d p="5,5,25,16711680,1600000000,0,cd${i},${2000 + i}">early ${i}</d>`);
  rows.push('<d p="59,4,25,65280,1600000000,0,ef,3000">the end</d>');
  return `<?xml version="1.0" encoding="UTF-8"?>\n<i>\n${rows.join('\n')}\n</i>\n`;
}

describe('danmaku files in the pages', () => {
  const db = testDatabase('pagefiles');
  let redis: TestRedis;
  let system: Standalone;
  let browser: BrowserContext;
  let profile: string;
  const problems = { pageErrors: [] as string[], cspViolations: [] as string[] };
  const roomId = uniqueRoom('files-page');
  const streamer = tokenFor('files-host', 'streamer', [roomId]);
  let liveId: string;

  const openPage = async (path: string): Promise<Page> => {
    const page = await browser.newPage();
    watchPage(page, path, problems);
    await page.goto(`${system.url}${path}`);
    return page;
  };

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(testConfig({ redisUrl: redis.url, mysqlUrl: db.url, replaySettleMs: 1 }), createLogger('test', 'silent'));
    profile = mkdtempSync(join(tmpdir(), 'danmaku-chromium-'));
    browser = await launchChromium(profile);
    const headers = { authorization: `Bearer ${streamer}` };
    const started = await fetch(`${system.url}/v1/rooms/${roomId}/lives`, { method: 'POST', headers });
    assert.equal(started.status, 201);
    liveId = ((await started.json()) as { liveId: string }).liveId;
    const ended = await fetch(`${system.url}/v1/rooms/${roomId}/lives/${liveId}/end`, { method: 'POST', headers });
    assert.equal(ended.status, 200);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await redis?.stop();
    await db.drop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('studio: "Import danmaku file" imports into the last live, and a second time adds nothing', async () => {
    const page = await openPage(`/studio/${roomId}`);
    await page.fill('#token', streamer);
    await page.click('#use-token');
    const status = page.locator('#studio-status');
    await page.click('#import-danmaku');
    await status.filter({ hasText: 'Choose a danmaku file' }).waitFor();
    await page.setInputFiles('#danmaku-file', { name: 'old-stream.xml', mimeType: 'text/xml', buffer: Buffer.from(danmakuFile()) });
    await page.click('#import-danmaku');
    await status.filter({ hasText: `43 comments imported into live ${liveId}.` }).waitFor();
    await page.click('#import-danmaku');
    await status.filter({ hasText: `0 comments imported into live ${liveId}; 43 already there.` }).waitFor();
    // A refusal shows the API's own message.
    await page.setInputFiles('#danmaku-file', { name: 'broken.xml', mimeType: 'text/xml', buffer: Buffer.from('<i><d p="1,1,25,0">open') });
    await page.click('#import-danmaku');
    await status.filter({ hasText: 'not well-formed XML' }).waitFor();
    assert.ok(await status.evaluate((el) => el.classList.contains('error')));
    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'studio-import.png'), fullPage: true });
    await page.close();
  });

  it('replay: the density curve rises over the burst, is flat where nothing was said, and a click seeks there', async () => {
    const page = await openPage(`/replay/${liveId}`);
    await page.locator('#replay-state', { hasText: 'paused' }).waitFor();
    const canvas = page.locator('#density');
    await page.waitForFunction(() => Number(document.getElementById('density')?.dataset.peak) > 0);
    // The seek bar reaches the last imported comment (59 s), though the live itself lasted a moment.
    await page.locator('#clock', { hasText: '0:00 / 0:59' }).waitFor();

    const columns = await paintedHeights(canvas);
    const width = columns.length;
    const total = 59_001;
    const at = (ms: number): number => columns[Math.round((ms / total) * width)] ?? 0;
    const tallest = columns.indexOf(Math.max(...columns));
    const tallestMs = (tallest / width) * total;
    assert.ok(tallestMs > 29_500 && tallestMs < 32_500, `the peak is over the burst (at ${Math.round(tallestMs)} ms)`);
    assert.ok(at(5000) > 2, 'a rise at 5 s');
    for (const quiet of [15_000, 20_000, 45_000, 50_000]) assert.ok(at(quiet) <= 2, `flat at ${quiet} ms (${at(quiet)} px)`);

    // A click on the curve at 32.5 s seeks the replay there (to a pixel's worth of time).
    const box = (await canvas.boundingBox())!;
    await canvas.click({ position: { x: (32_500 / total) * box.width, y: box.height / 2 } });
    const value = Number(await page.inputValue('#timeline'));
    assert.ok(Math.abs(value - 32_500) < 400, `the seek bar is at ${value}`);
    await page.locator('#clock', { hasText: '0:32 / 0:59' }).waitFor();
    // The burst around there is what the stage shows.
    await page.locator('#stage .danmaku', { hasText: 'burst' }).first().waitFor();

    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'replay-density.png') });

    const ass = await page.getAttribute('#ass-link', 'href');
    assert.equal(ass, `/v1/lives/${liveId}/danmaku.ass`);
    assert.notEqual(await page.getAttribute('#ass-link', 'download'), null, 'a download');
    assert.equal(await page.getAttribute('#xml-link', 'href'), `/v1/lives/${liveId}/danmaku.xml`);
    const file = await page.evaluate(async (href) => (await fetch(href)).text(), ass);
    assert.equal(file.split('\n').filter((l) => l.startsWith('Dialogue: ')).length, 43);
    await page.close();
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.cspViolations, []);
  });
});
