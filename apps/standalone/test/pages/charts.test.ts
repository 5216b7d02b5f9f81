/**
 * The studio's and the admin page's charts in Debian's Chromium, drawn from real numbers: a room
 * that receives comments and likes (the studio's stats samples) and a deployment that accepts
 * messages (the admin page's /metrics rates).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, tokenFor, uniqueRoom } from '@danmaku/testkit';
import { launchChromium, watchPage } from './browser.js';

interface Drawn {
  last: string;
  points: string[];
}

/** A chart's series as drawn: its caption's newest value and its polyline's points. */
const series = (page: Page, chart: string, key: string): Promise<Drawn> =>
  page.evaluate(
    ([c, k]) => {
      const figure = document.querySelector(`figure[data-chart="${c}"]`);
      const line = figure?.querySelector(`polyline[data-series="${k}"]`);
      const legend = figure?.querySelector<HTMLElement>(`figcaption .series[data-series="${k}"]`);
      return { last: legend?.dataset.last ?? '', points: (line?.getAttribute('points') ?? '').split(' ').filter(Boolean) };
    },
    [chart, key] as const,
  );

describe('charts of the last 10 minutes', () => {
  let system: Standalone;
  let browser: BrowserContext;
  let profile: string;
  const problems = { pageErrors: [] as string[], cspViolations: [] as string[] };

  const post = async (path: string, who: string, body: unknown): Promise<void> => {
    const res = await fetch(`${system.url}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor(who, 'viewer')}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202, await res.text());
  };
  const openPage = async (path: string): Promise<Page> => {
    const page = await browser.newPage();
    watchPage(page, path, problems);
    await page.goto(`${system.url}${path}`);
    return page;
  };

  before(async () => {
    system = await startStandalone(testConfig({ rateUserMax: 1000, rateIpMax: 1000, likesFlushMs: 100 }), createLogger('test', 'silent'));
    profile = mkdtempSync(join(tmpdir(), 'danmaku-charts-'));
    browser = await launchChromium(profile);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
    assert.deepEqual(problems.pageErrors, []);
    assert.deepEqual(problems.cspViolations, [], 'the charts draw under the pages CSP');
  });

  it('studio: messages/s by type, online, likes and gear from the room stats', async () => {
    const roomId = uniqueRoom('charts');
    const page = await openPage(`/studio/${roomId}`);
    await page.fill('#token', tokenFor('host', 'streamer', [roomId]));
    await page.click('#use-token');
    await page.locator('figure[data-chart="rate"]').waitFor();
    for (const chart of ['rate', 'online', 'likes', 'gear']) await page.locator(`figure[data-chart="${chart}"] svg polyline`).first().waitFor({ state: 'attached' });
    // A quiet room first: the rate is drawn at zero.
    await page.waitForFunction(() => document.querySelector('figure[data-chart="rate"] .series[data-series="comment"]')?.getAttribute('data-last') === '0');

    // Comments at a steady pace and some likes, while the studio samples every 3 s.
    await post(`/v1/rooms/${roomId}/likes`, 'fan-likes', { count: 7 });
    const sending = (async () => {
      for (let i = 0; i < 40; i++) {
        await post(`/v1/rooms/${roomId}/messages`, `fan-${i % 5}`, { type: 'comment', content: `chart me ${i}` });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await page.waitForFunction(() => Number(document.querySelector('figure[data-chart="rate"] .series[data-series="comment"]')?.getAttribute('data-last')) > 0, undefined, { timeout: 20_000 });
    await page.waitForFunction(() => document.querySelector('figure[data-chart="likes"] .series[data-series="likes"]')?.getAttribute('data-last') === '7', undefined, { timeout: 20_000 });
    await sending;

    const comments = await series(page, 'rate', 'comment');
    assert.ok(comments.points.length >= 2, JSON.stringify(comments));
    // The newest point stands above the baseline, the first (quiet) one on it.
    const y = (point: string | undefined) => Number(point?.split(',')[1]);
    assert.ok(y(comments.points.at(-1)) < y(comments.points[0]), JSON.stringify(comments.points));
    const gifts = await series(page, 'rate', 'gift');
    assert.equal(gifts.last, '0', 'no gifts were sent');
    assert.ok(gifts.points.every((p) => y(p) === y(gifts.points[0])), 'a flat line');
    // The caption's numbers are the server's.
    const stats = (await (await fetch(`${system.url}/v1/rooms/${roomId}/stats`, { headers: { authorization: `Bearer ${tokenFor('host', 'streamer', [roomId])}` } })).json()) as {
      gear: number;
      likes: number;
    };
    assert.equal((await series(page, 'gear', 'gear')).last, String(stats.gear));
    assert.equal(stats.likes, 7);

    // A reload keeps the curve (the page's samples are kept for the tab).
    const before = comments.points.length;
    await page.reload();
    await page.fill('#token', tokenFor('host', 'streamer', [roomId]));
    await page.click('#use-token');
    await page.waitForFunction((n) => (document.querySelector('figure[data-chart="rate"] polyline[data-series="comment"]')?.getAttribute('points') ?? '').split(' ').length > n, before);
    await page.close();
  });

  it('admin: the deployment from /metrics', async () => {
    const page = await openPage('/admin');
    await page.locator('figure[data-chart="ingest"]').waitFor();
    const roomId = uniqueRoom('charts-admin');
    let done = false;
    const sending = (async () => {
      // Until the chart has it: two reads of /metrics make a rate, one every 2 s.
      for (let i = 0; !done && i < 300; i++) {
        await post(`/v1/rooms/${roomId}/messages`, `op-fan-${i % 5}`, { type: 'comment', content: `metric me ${i}` });
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    await page.waitForFunction(
      () => {
        const figure = document.querySelector('figure[data-chart="ingest"]');
        const points = (figure?.querySelector('polyline')?.getAttribute('points') ?? '').split(' ').filter(Boolean);
        return points.length >= 2 && Number(figure?.querySelector('.series')?.getAttribute('data-last')) > 0;
      },
      undefined,
      { timeout: 30_000 },
    );
    done = true;
    await sending;
    const ingest = await series(page, 'ingest', 'messages accepted');
    assert.ok(ingest.points.length >= 2, JSON.stringify(ingest));
    assert.ok(Number(ingest.last) > 0 && Number(ingest.last) < 50, `about 10 messages/s: ${ingest.last}`);
    await page.close();
  });
});
