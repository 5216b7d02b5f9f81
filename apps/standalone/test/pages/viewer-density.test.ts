/**
 * The viewer page's density strip, in Debian's Chromium against the standalone system: a room
 * with a running live shows the comment density of its last minutes with the peak over a burst,
 * follows a later burst as the live runs, asks for it once per refresh and stops (hidden) when the
 * live ends; a room without a live shows no strip and asks nothing.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, sleep, startRedis, testConfig, tokenFor, uniqueRoom, type TestRedis } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { launchChromium, paintedHeights, watchPage } from './browser.js';

/** What the strip's canvas shows: the stretch of the live it spans and its painted height per column. */
interface Drawn {
  fromMs: number;
  toMs: number;
  peak: number;
  peakMs: number;
  heights: number[];
}

/** The picture and the stretch it spans, read again when a refresh redrew the strip in between. */
async function readStrip(page: Page): Promise<Drawn> {
  const canvas = page.locator('#density');
  const stretch = (): Promise<string> => canvas.evaluate((el) => JSON.stringify((el as HTMLCanvasElement).dataset));
  for (;;) {
    const before = await stretch();
    const heights = await paintedHeights(canvas);
    if ((await stretch()) !== before) continue;
    const { fromMs, toMs, peak, peakMs } = JSON.parse(before) as Record<string, string>;
    return { fromMs: Number(fromMs), toMs: Number(toMs), peak: Number(peak), peakMs: Number(peakMs), heights };
  }
}

/** The live's time (ms from its start) under the strip's tallest column. */
function tallestAt(drawn: Drawn): number {
  const tallest = drawn.heights.indexOf(Math.max(...drawn.heights));
  return drawn.fromMs + ((tallest + 0.5) / drawn.heights.length) * (drawn.toMs - drawn.fromMs);
}

describe('the viewer page density strip', () => {
  const db = testDatabase('viewerdensity');
  let redis: TestRedis;
  let system: Standalone;
  let browser: BrowserContext;
  let profile: string;
  const problems = { pageErrors: [] as string[], cspViolations: [] as string[] };

  const openPage = async (path: string, densityRequests: string[]): Promise<Page> => {
    const page = await browser.newPage();
    watchPage(page, path, problems);
    page.on('request', (request) => {
      if (new URL(request.url()).pathname.endsWith('/density')) densityRequests.push(request.url());
    });
    await page.goto(`${system.url}${path}`);
    return page;
  };
  const call = async (path: string, token: string, body?: unknown): Promise<Response> =>
    fetch(`${system.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  /** `count` comments at once from as many users; answers the span of the live they were sent in (ms from its start). */
  const burst = async (roomId: string, startedAt: number, count: number, label: string): Promise<{ from: number; to: number }> => {
    const from = Date.now() - startedAt;
    const answers = await Promise.all(
      Array.from({ length: count }, (_, i) => call(`/v1/rooms/${roomId}/messages`, tokenFor(`${label}-${i}`), { type: 'comment', content: `${label} ${i}` })),
    );
    for (const res of answers) assert.equal(res.status, 202, await res.clone().text());
    return { from, to: Date.now() - startedAt };
  };

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(
      testConfig({ redisUrl: redis.url, mysqlUrl: db.url, rateUserMax: 1000, rateIpMax: 1000 }),
      createLogger('test', 'silent'),
    );
    profile = mkdtempSync(join(tmpdir(), 'danmaku-chromium-'));
    browser = await launchChromium(profile);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await redis?.stop();
    await db.drop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('a running live: the strip peaks over the burst, follows the live, and hides when it ends', async () => {
    const roomId = uniqueRoom('density-live');
    const streamer = tokenFor('density-host', 'streamer', [roomId]);
    const started = await call(`/v1/rooms/${roomId}/lives`, streamer);
    assert.equal(started.status, 201);
    const { liveId, startedAt } = (await started.json()) as { liveId: string; startedAt: number };

    // One comment early, a burst of 30 at about 3 s, one more at about 6 s.
    await burst(roomId, startedAt, 1, 'early');
    await sleep(3000);
    const first = await burst(roomId, startedAt, 30, 'burst');
    await sleep(3000);
    await burst(roomId, startedAt, 1, 'late');

    const requests: string[] = [];
    const openedAt = Date.now();
    const page = await openPage(`/rooms/${roomId}`, requests);
    await page.locator('#live-density').waitFor({ state: 'visible' });
    // The archive writes behind the live: wait until the strip counts every comment's span.
    await page.waitForFunction(() => Number(document.getElementById('density')?.dataset.toMs) > 6000 && document.getElementById('density-peak')?.textContent !== '');
    const drawn = await readStrip(page);
    // A live younger than 10 minutes is drawn whole.
    assert.equal(drawn.fromMs, 0);
    assert.ok(drawn.toMs >= first.to + 3000, `the strip reaches the late comment (${drawn.toMs} ms)`);
    const slack = Math.max(150, ((drawn.toMs - drawn.fromMs) / drawn.heights.length) * 8);
    assert.ok(drawn.peakMs >= first.from - slack && drawn.peakMs <= first.to + slack, `the peak (${drawn.peakMs} ms) is over the burst (${first.from}-${first.to} ms)`);
    const tallest = tallestAt(drawn);
    assert.ok(tallest >= first.from - slack && tallest <= first.to + slack, `the tallest column (${Math.round(tallest)} ms) is over the burst`);
    // Nothing was said between the early comment and the burst, nor between the burst and the late one.
    const columnAt = (ms: number): number => drawn.heights[Math.floor(((ms - drawn.fromMs) / (drawn.toMs - drawn.fromMs)) * drawn.heights.length)] ?? 0;
    for (const quiet of [first.from / 2, first.to + 1500]) assert.ok(columnAt(quiet) <= 2, `flat at ${Math.round(quiet)} ms (${columnAt(quiet)} px)`);
    const label = (await page.textContent('#density-peak')) ?? '';
    assert.match(label, new RegExp(`^Peak: ${drawn.peak} comments around `));
    assert.equal(await page.getAttribute('#density', 'title'), label, 'the label is also the tooltip');
    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'viewer-density.png') });

    // A bigger burst later: a refresh moves the peak there without a reload.
    await sleep(2000);
    const second = await burst(roomId, startedAt, 100, 'again');
    await page.waitForFunction((from) => Number(document.getElementById('density')?.dataset.peakMs) >= from, second.from - 1000, { timeout: 15_000 });
    const later = await readStrip(page);
    const laterSlack = Math.max(150, ((later.toMs - later.fromMs) / later.heights.length) * 8);
    assert.ok(later.peakMs <= second.to + laterSlack, `the new peak (${later.peakMs} ms) is over the second burst (${second.from}-${second.to} ms)`);

    // One request per refresh, every few seconds: never more than one per 4 s since the page opened (plus the first).
    assert.ok(requests.length >= 2 && requests.length <= 2 + (Date.now() - openedAt) / 4000, `${requests.length} density requests`);
    assert.ok(requests.every((url) => url.includes(`/v1/lives/${liveId}/density?`)));

    // The live ends: the strip hides and the page stops asking.
    const ended = await call(`/v1/rooms/${roomId}/lives/${liveId}/end`, streamer);
    assert.equal(ended.status, 200);
    await page.locator('#live-density').waitFor({ state: 'hidden', timeout: 10_000 });
    const asked = requests.length;
    await sleep(6000);
    assert.equal(requests.length, asked, 'no density request after the live ended');
    await page.close();
  });

  it('a room without a live shows no strip and asks for no density', async () => {
    const requests: string[] = [];
    const page = await openPage(`/rooms/${uniqueRoom('density-none')}`, requests);
    await page.locator('#live-status', { hasText: 'offline' }).waitFor();
    assert.ok(await page.locator('#live-density').isHidden());
    assert.deepEqual(requests, []);
    await page.close();
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.cspViolations, []);
  });
});
