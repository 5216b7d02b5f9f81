/**
 * The web pages (DESIGN.md section 6) in a real browser: Debian's Chromium driven by
 * playwright-core (never a downloaded browser), against the standalone system in this process.
 * Runs on a private Redis: the admin page flips degrade switches, which are global.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { REPO_ROOT, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { launchChromium, watchPage } from './browser.js';

describe('web pages in Chromium', () => {
  let redis: TestRedis;
  let system: Standalone;
  let browser: BrowserContext;
  let profile: string;
  const logger = createLogger('test', 'silent');
  /** Uncaught errors in any page: a page that throws is broken even if the asserts pass. */
  const pageErrors: string[] = [];
  /** Chromium's console reports of anything the pages' Content-Security-Policy blocked. */
  const cspViolations: string[] = [];

  const post = async (path: string, token: string, body?: unknown, method = 'POST'): Promise<Response> =>
    fetch(`${system.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const say = async (roomId: string, token: string, content: string): Promise<void> => {
    const res = await post(`/v1/rooms/${roomId}/messages`, token, { type: 'comment', content });
    assert.equal(res.status, 202, await res.clone().text());
  };
  const openPage = async (path: string): Promise<Page> => {
    const page = await browser.newPage();
    watchPage(page, path, { pageErrors, cspViolations });
    await page.goto(`${system.url}${path}`);
    return page;
  };
  const flying = (page: Page, text: string) => page.locator('#stage .danmaku', { hasText: text });

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(
      testConfig({ redisUrl: redis.url, switchesRefreshMs: 100, likesFlushMs: 100, rateUserMax: 1000, rateIpMax: 1000 }),
      logger,
    );
    profile = mkdtempSync(join(tmpdir(), 'danmaku-chromium-'));
    browser = await launchChromium(profile);
  });

  after(async () => {
    await browser?.close();
    await system?.stop();
    await redis?.stop();
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  it('viewer: dev token, send box, other users, HTML as text, gifts, likes, viewers', async () => {
    const roomId = uniqueRoom('page');
    const page = await openPage(`/rooms/${roomId}`);
    await page.fill('#dev-name', 'Ann');
    await page.click('#dev-token');
    await page.locator('#whoami', { hasText: 'Signed in as Ann' }).waitFor();
    await page.locator('#mode', { hasText: 'live (socket)' }).waitFor();

    // Our own comment goes out through the send box and comes back through the SDK.
    await page.fill('#comment', 'hello from the page');
    await page.click('#send');
    await flying(page, 'hello from the page').waitFor();
    assert.ok(await flying(page, 'hello from the page').evaluate((el) => el.classList.contains('mine')), 'own comment is marked');
    assert.equal(await page.inputValue('#comment'), '', 'the send box is cleared');

    const bob = tokenFor('bob', 'viewer');
    await say(roomId, bob, 'hi from bob over HTTP');
    await flying(page, 'hi from bob over HTTP').waitFor();

    const evil = '<img src=x onerror="window.__pwned=1">';
    await say(roomId, bob, evil);
    const shown = flying(page, 'onerror');
    await shown.waitFor();
    assert.equal(await shown.textContent(), evil, 'the markup is shown as text');
    assert.equal(await page.locator('img').count(), 0, 'no img element was created');
    assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

    await page.click('.gift-btn[data-gift="rose"]');
    const gift = page.locator('#stage .danmaku.gift', { hasText: 'a rose' });
    await gift.waitFor();
    assert.match((await gift.textContent()) ?? '', /^Ann sent a rose .* × 1$/);

    const likesBefore = Number(await page.textContent('#likes'));
    await page.click('#like');
    await page.click('#like');
    await waitFor('likes count to rise by 2', async () => Number(await page.textContent('#likes')) >= likesBefore + 2, 5000);

    assert.equal(await page.getAttribute('#studio-link', 'href'), `/studio/${roomId}`);
    await page.locator('#viewers li', { hasText: 'Ann (you)' }).waitFor();
    assert.ok(Number(await page.textContent('#online')) >= 1);

    // A busy moment for the screenshot: several users, a gift, long and short comments.
    const lines = ['666666', 'what a play!!', 'first time here, hello everyone', 'lol', 'GG', '前方高能', 'can you do that again?', 'this song 🔥', 'hi from Berlin', 'nice'];
    for (const [i, line] of lines.entries()) {
      await say(roomId, tokenFor(`fan-${i}`, 'viewer'), line);
      if (i === 4) await post(`/v1/rooms/${roomId}/messages`, tokenFor('whale', 'viewer'), { type: 'gift', giftId: 'rocket', count: 3 });
      await page.waitForTimeout(250);
    }
    await flying(page, 'nice').waitFor();
    await page.waitForFunction(() => document.querySelectorAll('#stage .danmaku').length >= 8);
    const lanes = await page.$$eval('#stage .danmaku', (els) => els.map((el) => el.getBoundingClientRect()));
    assert.ok(lanes.length >= 8, `several comments in flight (${lanes.length})`);
    // No two flying comments overlap.
    for (const [i, a] of lanes.entries()) {
      for (const b of lanes.slice(i + 1)) {
        const overlap = a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom;
        assert.ok(!overlap, `overlap: ${JSON.stringify(a)} ${JSON.stringify(b)}`);
      }
    }
    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'viewer.png') });
    await page.close();
  });

  it('replay: the timeline plays a live in step with offsetMs', async () => {
    const roomId = uniqueRoom('replay-page');
    const streamer = tokenFor('host', 'streamer', [roomId]);
    const started = await post(`/v1/rooms/${roomId}/lives`, streamer);
    assert.equal(started.status, 201, await started.clone().text());
    const { liveId } = (await started.json()) as { liveId: string };
    const room = await openPage(`/rooms/${roomId}`);
    await room.locator('#live-status', { hasText: 'LIVE' }).waitFor();
    await room.close();
    const viewer = tokenFor('replayer', 'viewer');
    for (const [i, text] of ['replay one', 'replay two', 'replay three'].entries()) {
      // The gaps between them are what the replay must show: they are made in real time.
      if (i > 0) await new Promise((r) => setTimeout(r, 700));
      await say(roomId, viewer, text);
    }
    // All three stored before the live ends.
    await waitFor('the three comments stored', async () => {
      const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=comment`);
      return ((await res.json()) as { messages: unknown[] }).messages.length === 3;
    });
    assert.equal((await post(`/v1/rooms/${roomId}/lives/${liveId}/end`, streamer)).status, 200);
    const archived = await waitFor('the live archived', async () => {
      const res = await fetch(`${system.url}/v1/lives/${liveId}/messages`);
      const page = (await res.json()) as { messages: { content: string; offsetMs: number }[] };
      return page.messages.length === 3 ? page.messages : null;
    });
    const offsets = archived.map((m) => m.offsetMs);

    const page = await openPage(`/replay/${liveId}`);
    await page.locator('#replay-state', { hasText: 'paused' }).waitFor();
    // Record when each danmaku appears, on the page's own clock.
    await page.evaluate(() => {
      const seen: Record<string, number> = {};
      (window as unknown as { __seen: Record<string, number> }).__seen = seen;
      new MutationObserver((records) => {
        for (const r of records) r.addedNodes.forEach((n) => (seen[n.textContent ?? ''] ??= performance.now()));
      }).observe(document.getElementById('stage') as HTMLElement, { childList: true });
    });
    await page.click('#play');
    await flying(page, 'replay three').waitFor({ timeout: 10_000 });
    const seen = await page.evaluate(() => (window as unknown as { __seen: Record<string, number> }).__seen);
    const at = ['replay one', 'replay two', 'replay three'].map((text) => seen[text] ?? NaN);
    assert.ok(at.every(Number.isFinite), JSON.stringify(seen));
    // The gaps on screen follow the gaps in offsetMs (a tick is 100 ms; the machine may be busy).
    for (let i = 1; i < 3; i++) {
      const gap = (at[i] as number) - (at[i - 1] as number);
      const expected = (offsets[i] as number) - (offsets[i - 1] as number);
      assert.ok(gap > expected - 250 && gap < expected + 1500, `gap ${i}: ${gap} ms on screen, ${expected} ms in offsets`);
    }
    assert.equal(await page.textContent('#shown'), '3');
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'replay.png') });
    await page.locator('#play', { hasText: 'Play' }).waitFor({ timeout: 5000 });
    await page.close();
  });

  it('admin: a switch flipped on the page is what the server has', async () => {
    const admin = tokenFor('ops', 'admin');
    const page = await openPage('/admin');
    // Dev tokens are never admin: the page offers none and says how to sign one.
    assert.equal(await page.locator('#dev-token').count(), 0);
    assert.match((await page.textContent('#admin-token-hint')) ?? '', /npm run -s token -- --sub a --name A --role admin/);
    await page.fill('#token', admin);
    await page.click('#use-token');
    await page.locator('#admin-status', { hasText: 'Loaded.' }).waitFor();
    assert.equal(await page.isChecked('#sw-likes'), true);
    assert.equal(await page.inputValue('#rt-percent'), '100', 'the router runs in this process: its config shows');
    await page.uncheck('#sw-likes');
    await page.fill('#sw-readOnlyRooms', 'quiet-room, other-room');
    await page.click('#save-switches');
    await page.locator('#admin-status', { hasText: 'Switches saved' }).waitFor();
    const headers = { authorization: `Bearer ${admin}` };
    const { switches } = (await (await fetch(`${system.url}/v1/admin/switches`, { headers })).json()) as { switches: { likes: boolean; readOnlyRooms: string[] } };
    assert.equal(switches.likes, false);
    assert.deepEqual(switches.readOnlyRooms, ['quiet-room', 'other-room']);

    await page.fill('#rt-percent', '40');
    await page.fill('#rt-blacklist-versions', '<2.0.0, 2.3.*');
    await page.click('#save-route');
    await page.locator('#admin-status', { hasText: 'Routing saved' }).waitFor();
    const { config } = (await (await fetch(`${system.url}/v1/admin/route-config`, { headers })).json()) as {
      config: { percent: number; blacklist: { versions: string[] } };
    };
    assert.equal(config.percent, 40);
    assert.deepEqual(config.blacklist.versions, ['<2.0.0', '2.3.*']);
    assert.ok((await page.locator('#connectors tr').count()) >= 1, 'the embedded connector is listed');
    await page.locator('#metrics tr', { hasText: 'messages accepted' }).waitFor();
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'admin.png') });
    await page.close();
  });

  it('studio: live, delete, mute, ban, slow mode, notice; a viewer token is refused', async () => {
    const roomId = uniqueRoom('studio');
    const streamer = tokenFor('host', 'streamer', [roomId]);
    const get = async <T>(path: string): Promise<T> => (await fetch(`${system.url}${path}`)).json() as Promise<T>;
    const page = await openPage(`/studio/${roomId}`);
    const status = page.locator('#studio-status');
    const row = (text: string) => page.locator('#messages li', { hasText: text });
    await page.fill('#token', streamer);
    await page.click('#use-token');
    await page.locator('#stats tr', { hasText: 'slow mode' }).waitFor();

    await page.click('#start-live');
    await page.locator('#live-status', { hasText: 'LIVE' }).waitFor();
    const { live } = await get<{ live: { liveId: string } | null }>(`/v1/rooms/${roomId}`);
    assert.ok(live, 'the room is live');
    assert.match((await page.textContent('#live-state')) ?? '', new RegExp(live.liveId));
    // The live's video link, set from the studio while live.
    await page.fill('#playback-url', 'https://cdn.example/live/index.m3u8');
    await page.click('#set-playback');
    await status.filter({ hasText: 'Viewers now watch https://cdn.example/live/index.m3u8' }).waitFor();
    assert.equal((await get<{ playbackUrl: string | null }>(`/v1/lives/${live.liveId}`)).playbackUrl, 'https://cdn.example/live/index.m3u8');

    // A viewer's message sent over HTTP shows in the list; Delete takes it out of polls.
    const ann = tokenFor('ann', 'viewer');
    await say(roomId, ann, 'spam spam spam');
    await row('spam spam spam').waitFor();
    const spamId = await row('spam spam spam').getAttribute('data-id');
    assert.ok(spamId);
    await row('spam spam spam').getByRole('button', { name: 'Delete' }).click();
    await status.filter({ hasText: 'Message deleted.' }).waitFor();
    assert.equal(await row('spam spam spam').count(), 0);
    const { messages } = await get<{ messages: { id: string }[] }>(`/v1/rooms/${roomId}/messages?types=comment`);
    assert.ok(!messages.some((m) => m.id === spamId), 'the deleted message is gone from polls');

    // Mute for N minutes, ban: the authors' next sends are refused.
    await say(roomId, ann, 'more from ann');
    await page.fill('#mute-minutes', '5');
    await row('more from ann').getByRole('button', { name: 'Mute' }).click();
    await status.filter({ hasText: 'name-ann is muted for 5 min.' }).waitFor();
    const muted = await post(`/v1/rooms/${roomId}/messages`, ann, { type: 'comment', content: 'still here?' });
    assert.equal(muted.status, 403);
    assert.equal(((await muted.json()) as { error: { code: string } }).error.code, 'muted');
    const carl = tokenFor('carl', 'viewer');
    await say(roomId, carl, 'carl was here');
    await row('carl was here').getByRole('button', { name: 'Ban' }).click();
    await status.filter({ hasText: 'name-carl is banned' }).waitFor();
    const banned = await post(`/v1/rooms/${roomId}/messages`, carl, { type: 'comment', content: 'let me back' });
    assert.equal(((await banned.json()) as { error: { code: string } }).error.code, 'banned');

    // User content is text, never markup.
    const evil = '<img src=x onerror="window.__pwned=1">';
    const bob = tokenFor('bob', 'viewer');
    await say(roomId, bob, evil);
    await row('onerror').waitFor();
    assert.equal(await page.locator('#messages img').count(), 0, 'no img element was created');

    // Slow mode 5: another viewer's second quick send is refused.
    await page.fill('#slow-mode', '5');
    await page.click('#set-slow-mode');
    await status.filter({ hasText: 'one message per 5 s' }).waitFor();
    await page.locator('#stats tr', { hasText: '5 s' }).waitFor();
    const dana = tokenFor('dana', 'viewer');
    await say(roomId, dana, 'first from dana');
    const quick = await post(`/v1/rooms/${roomId}/messages`, dana, { type: 'comment', content: 'second from dana' });
    assert.equal(quick.status, 429);
    assert.equal(((await quick.json()) as { error: { code: string } }).error.code, 'slow_mode');

    await page.fill('#notice', 'Be kind: <b>no spoilers</b>');
    await page.click('#pin-notice');
    await page.locator('#pinned', { hasText: 'Be kind: <b>no spoilers</b>' }).waitFor();
    const { notice } = await get<{ notice: { content: string } | null }>(`/v1/rooms/${roomId}/notice`);
    assert.equal(notice?.content, 'Be kind: <b>no spoilers</b>');
    await row('Notice: Be kind').waitFor();
    await page.locator('#stats tr', { hasText: 'comment messages' }).waitFor();
    mkdirSync(join(REPO_ROOT, '.run'), { recursive: true });
    await page.screenshot({ path: join(REPO_ROOT, '.run', 'studio.png'), fullPage: true });

    await page.click('#end-live');
    await page.locator('#live-status', { hasText: 'offline' }).waitFor();
    assert.equal((await get<{ live: unknown }>(`/v1/rooms/${roomId}`)).live, null);
    // Once it ended, its recording.
    await page.fill('#recording-url', 'https://cdn.example/vod/rec.webm');
    await page.click('#set-recording');
    await status.filter({ hasText: `Live ${live.liveId} replays with https://cdn.example/vod/rec.webm` }).waitFor();
    assert.equal((await get<{ recordingUrl: string | null }>(`/v1/lives/${live.liveId}`)).recordingUrl, 'https://cdn.example/vod/rec.webm');

    // A viewer's token gets the API's refusal on the page.
    await page.fill('#token', tokenFor('eve', 'viewer'));
    await page.click('#use-token');
    await status.filter({ hasText: `Only the streamer of room ${roomId} or an admin may do this. (forbidden)` }).waitFor();
    assert.equal(await page.locator('#stats tr').count(), 0, 'no stats for a viewer');
    await page.click('#start-live');
    await status.filter({ hasText: '(forbidden)' }).waitFor();
    assert.equal((await get<{ live: unknown }>(`/v1/rooms/${roomId}`)).live, null, 'the viewer started nothing');

    // Development: a dev token minted for this room's streamer is accepted.
    await page.click('#dev-token');
    await page.locator('#who', { hasText: 'streamer (streamer)' }).waitFor();
    await page.locator('#stats tr', { hasText: 'slow mode' }).waitFor();
    assert.equal(await status.evaluate((el) => el.classList.contains('error')), false, (await status.textContent()) ?? '');
    await page.close();
  });

  it('dev tokens exist only with the development secret; pages load without errors', async () => {
    const minted = await fetch(`${system.url}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Zed' }) });
    assert.equal(minted.status, 200);
    const prod = await startStandalone(testConfig({ redisUrl: redis.url, jwtSecret: 'a-real-secret-for-this-test' }), logger, { connector: false });
    try {
      const res = await fetch(`${prod.url}/v1/dev/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'Zed' }) });
      assert.equal(res.status, 404);
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'not_found');
      assert.equal((await fetch(`${prod.url}/`)).status, 200, 'pages are still served');
    } finally {
      await prod.stop();
    }
    const script = await fetch(`${system.url}/js/viewer.js`);
    assert.match(script.headers.get('content-type') ?? '', /javascript/);
    assert.ok((await script.text()).includes('DanmakuClient'), 'the SDK is bundled into the page script');
    assert.equal((await fetch(`${system.url}/js/nope.js`)).status, 404);
    const studio = await openPage('/studio?room=query-room');
    await studio.locator('#room-name', { hasText: 'query-room' }).waitFor();
    assert.equal(await studio.getAttribute('#viewer-link', 'href'), '/rooms/query-room');
    await studio.close();
    // The check can see a violation: markup smuggled into a page cannot run its handler.
    const probe = await openPage('/rooms/csp-probe');
    await probe.evaluate(() => document.body.insertAdjacentHTML('beforeend', '<img src="data:," onload="window.__ran = 1">'));
    await waitFor('the blocked inline handler reported', async () => cspViolations.some((v) => v.startsWith('/rooms/csp-probe')), 5000);
    assert.equal(await probe.evaluate(() => (window as unknown as { __ran?: number }).__ran), undefined);
    await probe.close();
    cspViolations.splice(0, cspViolations.length, ...cspViolations.filter((v) => !v.startsWith('/rooms/csp-probe')));
    assert.deepEqual(pageErrors, []);
    // Every page above ran its whole flow under its CSP: nothing was blocked.
    assert.deepEqual(cspViolations, []);
  });
});
