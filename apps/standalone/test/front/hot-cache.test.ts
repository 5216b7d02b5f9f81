/**
 * A big room's polls are answered from the front's local cache with no
 * Redis call per poll (counted by the Redis server itself, INFO commandstats on a private
 * Redis), a small room's polls with a cursor older than its memory each go to Redis; the cache sees new and deleted messages and
 * keeps invariant 1; a room that cools loses its cache.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { encodeCursor } from '@danmaku/protocol';
import { createRedis, RedisStore, waitReady } from '@danmaku/store';
import { sleep, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { commandStats, delta, metric, metrics, poll, post, send, totalDelta } from './hot-helpers.js';

const SCRIPTS = ['evalsha', 'eval'];
const REFRESH_MS = 250;

describe('front local cache', () => {
  let redis: TestRedis;
  let system: Standalone;
  let store: RedisStore;
  const config = () =>
    testConfig({
      redisUrl: redis.url,
      bigRoomOnline: 3,
      // Big by online count only here, so hundreds of polls of the small room keep it small.
      bigRoomPollRate: 1_000_000,
      cacheRefreshMs: REFRESH_MS,
      bigRoomCoolMs: 1000,
      bigRoomPollLimit: 200,
      bigRoomSpanMs: 600_000,
      pollMemoryWindow: 10,
      rateUserMax: 1_000_000,
      rateIpMax: 1_000_000,
    });

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(config(), createLogger('test', 'silent'));
    const write = createRedis(redis.url);
    await waitReady(write);
    store = new RedisStore({ write, retention: 1000, dedupWindow: 1000, onlineTtlMs: 90_000 });
  });
  after(async () => {
    await system.stop();
    store.write.disconnect();
    await redis.stop();
  });

  async function fill(roomId: string, n: number): Promise<string[]> {
    const token = tokenFor('writer');
    const ids: string[] = [];
    for (let i = 0; i < n; i++) {
      const res = await send(system.url, token, roomId, { type: 'comment', content: `m${i}` });
      assert.equal(res.status, 202);
      ids.push(((await res.json()) as { id: string }).id);
    }
    await waitFor(`${n} messages in ${roomId}`, async () => (await poll(system.url, roomId, { types: 'comment', limit: 200 })).messages.length >= n);
    return ids;
  }

  async function makeBig(roomId: string): Promise<void> {
    for (const u of ['v1', 'v2', 'v3']) assert.equal((await post(system.url, `/v1/rooms/${roomId}/enter`, tokenFor(u))).status, 200);
    const before = metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' });
    await waitFor('the big room to be served from the cache', async () => {
      await poll(system.url, roomId, { types: 'comment' });
      return metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' }) > before;
    });
  }

  it('answers a big room from memory with no Redis call per poll, and a small room from Redis', async (t) => {
    const big = uniqueRoom('big');
    const small = uniqueRoom('small');
    await fill(big, 30);
    await fill(small, 30);
    await makeBig(big);
    const first = await poll(system.url, big, { types: 'comment', limit: 10 });
    assert.equal(first.messages.length, 10);

    // What the server does to Redis on its own (refreshes, snapshots, other roles' timers), per ms.
    const idleStart = await commandStats(redis.url);
    const idleStarted = Date.now();
    await sleep(1000);
    const idlePerMs = totalDelta(idleStart, await commandStats(redis.url)) / (Date.now() - idleStarted);

    const N = 300;
    const cachedBefore = metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' });
    let stats = await commandStats(redis.url);
    let started = Date.now();
    for (let i = 0; i < N; i += 30) {
      const pages = await Promise.all(Array.from({ length: 30 }, () => poll(system.url, big, { types: 'comment', limit: 10 })));
      for (const page of pages) assert.deepEqual(page.messages.map((m) => m.seq), first.messages.map((m) => m.seq));
    }
    const elapsedMs = Date.now() - started;
    let after = await commandStats(redis.url);
    const bigScripts = delta(stats, after, SCRIPTS);
    const bigAll = totalDelta(stats, after);
    // Background work only: one cache refresh (5 types in one pipeline) per interval, switch
    // snapshots; none of it scales with the polls.
    const allowance = 5 * (Math.ceil(elapsedMs / REFRESH_MS) + 2);
    assert.ok(bigScripts <= allowance, `${N} cached polls cost ${bigScripts} script calls in ${elapsedMs} ms (allowed ${allowance} for refreshes)`);
    const background = Math.ceil(idlePerMs * elapsedMs * 2) + 10;
    assert.ok(bigAll <= background, `${N} cached polls came with ${bigAll} Redis commands in ${elapsedMs} ms; background alone is about ${Math.round(idlePerMs * elapsedMs)}`);
    t.diagnostic(`${N} cached polls: ${bigScripts} script calls, ${bigAll} Redis commands in all (background ~${Math.round(idlePerMs * elapsedMs)}) in ${elapsedMs} ms`);
    assert.equal(metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' }) - cachedBefore, N);

    // A cursor older than the small room's memory window (DANMAKU_POLL_MEMORY_WINDOW 10): each poll reads Redis.
    const old = encodeCursor({ comment: 5 });
    stats = await commandStats(redis.url);
    started = Date.now();
    for (let i = 0; i < N; i += 30) await Promise.all(Array.from({ length: 30 }, () => poll(system.url, small, { types: 'comment', limit: 10, cursor: old })));
    after = await commandStats(redis.url);
    assert.ok(delta(stats, after, SCRIPTS) >= N, `each small-room poll older than memory reads Redis: ${delta(stats, after, SCRIPTS)} script calls for ${N} polls`);
    t.diagnostic(`${N} small-room polls older than memory: ${delta(stats, after, SCRIPTS)} script calls`);
  });

  it('a ready answer (written before routing) has the status, headers and bytes of the routed answer', async () => {
    const big = uniqueRoom('ready');
    await fill(big, 12);
    await makeBig(big);
    const url = `${system.url}/v1/rooms/${big}/messages?types=comment&limit=7`;
    const view = async (init: RequestInit = {}) => {
      const res = await fetch(url, init);
      const headers: Record<string, string> = {};
      res.headers.forEach((value, name) => {
        if (name !== 'date') headers[name] = value;
      });
      return { status: res.status, headers, body: await res.text() };
    };
    const cachedBefore = metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' });
    // The first poll of this query is built by the handler and kept; the next ones are the kept bytes.
    const routed = await view({ headers: { origin: 'https://site.example' } });
    const ready = [await view({ headers: { origin: 'https://site.example' } }), await view({ headers: { origin: 'https://site.example' } })];
    assert.equal(metric(await metrics(system.url), 'danmaku_polls_total', { source: 'cache' }) - cachedBefore, 3);
    for (const answer of ready) assert.deepEqual(answer, routed);
    assert.equal(routed.status, 200);
    assert.equal(routed.headers['content-type'], 'application/json; charset=utf-8');
    assert.equal(routed.headers.vary, 'Origin');
    assert.equal(routed.headers['access-control-allow-origin'], undefined);
    assert.equal((JSON.parse(routed.body) as { messages: unknown[] }).messages.length, 7);
    const head = await fetch(url, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), routed.headers['content-length']);
  });

  it('shows new messages within a refresh, keeps seq gap-free, and drops deleted ones', async () => {
    const room = uniqueRoom('bigflow');
    const ids = await fill(room, 5);
    await makeBig(room);
    let page = await poll(system.url, room, { types: 'comment', limit: 200 });
    assert.deepEqual(page.messages.map((m) => m.seq), [1, 2, 3, 4, 5]);

    // A cursor chain over the cache, while writers keep writing, sees every message once, in order.
    const token = tokenFor('w2');
    const writes = (async () => {
      for (let i = 0; i < 60; i++) assert.equal((await send(system.url, token, room, { type: 'comment', content: `n${i}` })).status, 202);
    })();
    const seen: number[] = page.messages.map((m) => m.seq);
    let cursor = page.cursor;
    await waitFor('65 messages through the cached cursor chain', async () => {
      const next = await poll(system.url, room, { types: 'comment', cursor, limit: 200 });
      assert.equal(next.skipped, false);
      seen.push(...next.messages.map((m) => m.seq));
      cursor = next.cursor;
      return seen.length >= 65;
    }, 15_000, 20);
    await writes;
    assert.deepEqual(seen, Array.from({ length: 65 }, (_, i) => i + 1));

    // Moderation deletes a message: the cache drops it (pub/sub), the next polls never show it.
    assert.equal(await store.deleteMessage(room, 'comment', ids[2] as string), true);
    await waitFor('the deleted message to vanish from the cache', async () => {
      page = await poll(system.url, room, { types: 'comment', limit: 200 });
      return !page.messages.some((m) => m.id === ids[2]);
    });
    assert.equal(page.messages.length, 64);
    const text = await metrics(system.url);
    assert.ok(metric(text, 'danmaku_polls_total', { source: 'cache' }) > 0);
  });

  it('a room polled hard becomes big, and small again once it cools', async () => {
    const rateRedis = await startRedis();
    const hot = await startStandalone(
      testConfig({ redisUrl: rateRedis.url, rateUserMax: 1_000_000, rateIpMax: 1_000_000, bigRoomPollRate: 20, bigRoomOnline: 1_000_000, cacheRefreshMs: 200, bigRoomCoolMs: 600 }),
      createLogger('test', 'silent'),
    );
    try {
      const room = uniqueRoom('rate');
      const changes = async (to: string) => metric(await metrics(hot.url), 'danmaku_front_big_room_changes_total', { to });
      const bigBefore = await changes('big');
      const smallBefore = await changes('small');
      const cacheBefore = metric(await metrics(hot.url), 'danmaku_polls_total', { source: 'cache' });
      await waitFor('the room to become big by poll rate', async () => {
        await Promise.all(Array.from({ length: 10 }, () => poll(hot.url, room)));
        return metric(await metrics(hot.url), 'danmaku_polls_total', { source: 'cache' }) > cacheBefore;
      });
      assert.equal((await changes('big')) - bigBefore, 1);
      // Metrics are per process and other rooms of this file may cool too: the proof that this
      // room cooled is that a lone poll of it is answered from Redis again.
      await waitFor('the room to cool and drop its cache', async () => (await changes('small')) > smallBefore, 5000);
      await waitFor(
        'a poll of the cooled room to be answered as a small room again (memory or Redis)',
        async () => {
          const small = async () => {
            const text = await metrics(hot.url);
            return metric(text, 'danmaku_polls_total', { source: 'redis' }) + metric(text, 'danmaku_polls_total', { source: 'memory' });
          };
          const smallBefore = await small();
          await poll(hot.url, room);
          return (await small()) - smallBefore === 1;
        },
        5000,
        200,
      );
    } finally {
      await hot.stop();
      await rateRedis.stop();
    }
  });
});
