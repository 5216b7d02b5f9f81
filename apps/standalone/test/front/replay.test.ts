import { encodeCursor } from '@danmaku/protocol';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call, metric, startLivesStack, type LivesStack } from './lives-stack.js';

interface Replayed {
  id: string;
  type: string;
  liveId: string;
  offsetMs: number;
}

const SEGMENT_MS = 250;
const SETTLE_MS = 300;
const db = testDatabase('replay');
let replayRedis: TestRedis;
let stack: LivesStack;
const config = () => stack.app.server && stack;

before(async () => {
  replayRedis = await startRedis();
});
after(async () => {
  await stack?.stop();
  await replayRedis.stop();
  await db.drop();
});

/** Reads a live's whole replay page by page; returns the messages and the page count. */
async function replayAll(url: string, liveId: string, types = 'comment,gift,system', limit = 250): Promise<{ messages: Replayed[]; pages: number; slowestMs: number }> {
  const messages: Replayed[] = [];
  let from: number | null = 0;
  let pages = 0;
  let slowestMs = 0;
  while (from !== null) {
    const started = Date.now();
    const res = await call(url, 'GET', `/v1/lives/${liveId}/messages?from=${from}&types=${types}&limit=${limit}`);
    slowestMs = Math.max(slowestMs, Date.now() - started);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const page = res.body.messages as Replayed[];
    const next = res.body.next as number | null;
    if (next !== null) assert.ok(next > from || page.length === 0, 'next moves forward');
    messages.push(...page);
    from = next;
    pages++;
    assert.ok(pages < 1000, 'pagination ends');
  }
  return { messages, pages, slowestMs };
}

describe('replay of a live (local cache -> replay Redis -> MySQL)', () => {
  test('every message once, in offsetMs order, across segments and pages; cache tiers; replay Redis down', async () => {
    void config;
    stack = await startLivesStack(
      testConfig({
        mysqlUrl: db.url,
        replayRedisUrl: replayRedis.url,
        retention: 100,
        replaySegmentMs: SEGMENT_MS,
        // A short settle window only holds while the archiver writes at once (no linger).
        replaySettleMs: SETTLE_MS,
        archiverLingerMs: 0,
        rateUserMax: 1_000_000,
        rateIpMax: 1_000_000,
      }),
    );
    const { url } = stack;
    const room = uniqueRoom('replay');
    const streamer = tokenFor('streamer-1', 'streamer', [room]);
    const viewers = ['v1', 'v2', 'v3', 'v4'].map((id) => tokenFor(id));

    const before = await call(url, 'POST', `/v1/rooms/${room}/messages`, { token: viewers[0], body: { type: 'comment', content: 'before the live' } });
    assert.equal(before.status, 202);

    const started = await call(url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer });
    assert.equal(started.status, 201, JSON.stringify(started.body));
    const liveId = started.body.liveId as string;
    assert.match(liveId, /^[A-Za-z0-9_-]+$/);
    assert.equal((await call(url, 'POST', `/v1/rooms/${room}/lives`, { token: streamer })).status, 409, 'one live at a time');
    const roomState = await call(url, 'GET', `/v1/rooms/${room}`);
    assert.deepEqual(roomState.body.live, { liveId, startedAt: started.body.startedAt });

    // A few thousand messages of several types, sent over more than a dozen segments.
    const sent = new Map<string, string>();
    const TOTAL = 3000;
    let next = 0;
    const worker = async (w: number): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= TOTAL) return;
        if (i % 300 === 150) await new Promise((r) => setTimeout(r, SEGMENT_MS / 2));
        const gift = i % 3 === 0;
        const body = gift ? { type: 'gift', giftId: 'rose', count: 1 + (i % 5) } : { type: 'comment', content: `hello ${i}` };
        const res = await call(url, 'POST', `/v1/rooms/${room}/messages`, { token: viewers[(w + i) % viewers.length], body });
        assert.equal(res.status, 202, JSON.stringify(res.body));
        sent.set(res.body.id as string, gift ? 'gift' : 'comment');
      }
    };
    await Promise.all(Array.from({ length: 12 }, (_, w) => worker(w)));
    for (let i = 0; i < 5; i++) {
      const notice = await call(url, 'POST', `/v1/rooms/${room}/notice`, { token: streamer, body: { content: `notice ${i}` } });
      assert.equal(notice.status, 201, JSON.stringify(notice.body));
      sent.set(notice.body.id as string, 'system');
    }
    assert.equal(sent.size, TOTAL + 5);
    await stack.drained();

    // The live window kept only part of the live (`retention` per type, ten times that while a
    // stream is hot): a poll from the first message is told it skipped some. The archive has everything.
    const poll = await call(url, 'GET', `/v1/rooms/${room}/messages?types=comment&limit=200&cursor=${encodeCursor({ comment: 0 })}`);
    assert.equal(poll.body.skipped, true, 'live retention trimmed the comments');
    assert.equal(await stack.replay.archive.countLive(liveId), TOTAL + 5);

    const ended = await call(url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer });
    assert.equal(ended.status, 200);
    assert.equal(ended.body.liveId, liveId);
    assert.ok((ended.body.endedAt as number) >= (started.body.startedAt as number));
    assert.equal((await call(url, 'POST', `/v1/rooms/${room}/lives/${liveId}/end`, { token: streamer })).status, 409, 'ended already');
    assert.equal((await call(url, 'POST', `/v1/rooms/${room}/lives/lvnope/end`, { token: streamer })).status, 404);
    assert.equal((await call(url, 'GET', `/v1/rooms/${room}`)).body.live, null);
    // Past the settle time and the archivers' watermark past the end: segments become cacheable.
    const endedAt = ended.body.endedAt as number;
    await waitFor('the archivers past the end of the live', async () => ((await stack.archivedThrough()) ?? 0) >= endedAt);
    // The settle window is a span of time by definition: wait exactly until it has passed.
    await waitFor('the settle window after the end', () => Date.now() - endedAt >= SETTLE_MS);

    const tiers = async () => ({
      local: await metric(url, 'danmaku_replay_segment_reads_total', { tier: 'local' }),
      redis: await metric(url, 'danmaku_replay_segment_reads_total', { tier: 'redis' }),
      mysql: await metric(url, 'danmaku_replay_segment_reads_total', { tier: 'mysql' }),
    });
    const check = (messages: Replayed[]): void => {
      const ids = messages.map((m) => m.id);
      assert.equal(new Set(ids).size, ids.length, 'no message twice');
      assert.deepEqual(new Set(ids), new Set(sent.keys()), 'every message of the live, nothing else');
      for (let i = 1; i < messages.length; i++) assert.ok((messages[i] as Replayed).offsetMs >= (messages[i - 1] as Replayed).offsetMs, 'offsetMs order');
      for (const m of messages) {
        assert.equal(m.liveId, liveId);
        assert.equal(m.type, sent.get(m.id));
      }
    };

    // Cold: MySQL.
    const t0 = await tiers();
    const cold = await replayAll(url, liveId);
    check(cold.messages);
    const lastOffset = (cold.messages[cold.messages.length - 1] as Replayed).offsetMs;
    assert.ok(lastOffset / SEGMENT_MS >= 4, `spans several segments (last offset ${lastOffset} ms)`);
    assert.ok(cold.pages >= 12, `several pages (${cold.pages})`);
    const t1 = await tiers();
    assert.ok(t1.mysql > t0.mysql, 'first read loads segments from MySQL');

    // Hot: the same segments again come from this front's memory.
    const hot = await replayAll(url, liveId);
    check(hot.messages);
    const t2 = await tiers();
    assert.equal(t2.mysql, t1.mysql, 'no MySQL read for cached segments');
    assert.equal(t2.redis, t1.redis);
    assert.ok(t2.local > t1.local, 'second read hits the local cache');

    // Warm: another front (an empty local cache) finds them in the replay Redis.
    stack.replay.replay.clearLocal();
    const warm = await replayAll(url, liveId);
    check(warm.messages);
    const t3 = await tiers();
    assert.ok(t3.redis > t2.redis, 'replay Redis answers');
    assert.equal(t3.mysql, t2.mysql, 'and MySQL is not asked');

    // A window and a type filter select exactly what the full replay says they should.
    const from = Math.floor(lastOffset / 3);
    const to = Math.floor((2 * lastOffset) / 3);
    // A page ends after MAX_SEGMENTS_PER_READ segments: a slow (loaded) run spreads the window
    // over more of them, so follow `next` as a client does.
    const windowIds: string[] = [];
    for (let at: number | null = from, pages = 0; at !== null && pages < 100; pages++) {
      const page = await call(url, 'GET', `/v1/lives/${liveId}/messages?from=${at}&to=${to}&types=gift&limit=1000`);
      windowIds.push(...(page.body.messages as Replayed[]).map((m) => m.id));
      at = page.body.next as number | null;
    }
    const expected = cold.messages.filter((m) => m.type === 'gift' && m.offsetMs >= from && m.offsetMs < to).map((m) => m.id);
    assert.deepEqual(windowIds.sort(), expected.sort());

    // Replay Redis stopped: replay still answers, from MySQL, without waiting on the dead Redis.
    await replayRedis.stop();
    stack.replay.replay.clearLocal();
    const fallback = await replayAll(url, liveId);
    check(fallback.messages);
    const t4 = await tiers();
    assert.ok(t4.mysql > t3.mysql, 'MySQL answered');
    assert.ok(fallback.slowestMs < 1500, `fast without replay Redis (slowest page ${fallback.slowestMs} ms)`);
  });

  test('bad replay requests are clear 4xx', async () => {
    const { url } = stack;
    assert.equal((await call(url, 'GET', '/v1/lives/nope-nope/messages')).status, 404);
    assert.equal((await call(url, 'GET', '/v1/lives/x/messages?from=10&to=5')).status, 400);
    assert.equal((await call(url, 'GET', '/v1/lives/x/messages?types=bogus')).status, 400);
    assert.equal((await call(url, 'GET', '/v1/lives/x/messages?limit=0')).status, 400);
    const res = await call(url, 'GET', '/v1/lives/bad!id/messages');
    assert.equal(res.status, 400);
    assert.equal(typeof (res.body.error as { code: string }).code, 'string');
  });
});
