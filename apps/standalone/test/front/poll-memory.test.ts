/**
 * Small rooms' polls from the front's memory, kept fresh by the rooms' "advanced" signals: the
 * answers are the store's own (random cursors, deletions, cursors older than memory), a comment
 * is seen within a poll interval, Redis sees a read per advance rather than per poll (counted by
 * the Redis server itself, INFO commandstats on a private Redis), memory is bounded, and a lost
 * subscription is caught up when it comes back.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { decodeCursor, encodeCursor } from '@danmaku/protocol';
import { createLogger } from '@danmaku/observability';
import { MIN_RETRY_MS, PollMemory } from '@danmaku/front';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { channels, createRedis, RedisStore, waitReady } from '@danmaku/store';
import { measurePollCost, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { metric, metrics, poll, send } from './hot-helpers.js';

const WINDOW = 40;
const logger = createLogger('test', 'silent');

describe('poll memory of small rooms', () => {
  let redis: TestRedis;
  let system: Standalone;
  let store: RedisStore;
  const config = (overrides: Parameters<typeof testConfig>[0] = {}) =>
    testConfig({
      redisUrl: redis.url,
      // Every room stays small here, however hard it is polled.
      bigRoomOnline: 1_000_000,
      bigRoomPollRate: 1_000_000,
      pollMemoryWindow: WINDOW,
      // No gear changes when a loaded machine delays the processor: their commands are the sends' own.
      gearUpMs: 600_000,
      rateUserMax: 1_000_000,
      rateIpMax: 1_000_000,
      ...overrides,
    });

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(config(), logger);
    const write = createRedis(redis.url);
    await waitReady(write);
    store = new RedisStore({ write, retention: 1000, dedupWindow: 1000, onlineTtlMs: 90_000 });
  });
  after(async () => {
    await system.stop();
    store.write.disconnect();
    await redis.stop();
  });

  const sources = async (url: string) => {
    const text = await metrics(url);
    return { memory: metric(text, 'danmaku_polls_total', { source: 'memory' }), redis: metric(text, 'danmaku_polls_total', { source: 'redis' }) };
  };

  /** Sends `n` comments; resolves once the room's newest seq reaches `newest`. */
  async function fill(url: string, roomId: string, n: number, newest = n): Promise<string[]> {
    const token = tokenFor('writer');
    const ids: string[] = [];
    for (let i = 0; i < n; i += 10) {
      const batch = await Promise.all(
        Array.from({ length: Math.min(10, n - i) }, async (_, k) => {
          const res = await send(url, token, roomId, { type: 'comment', content: `m${i + k}` });
          assert.equal(res.status, 202);
          return ((await res.json()) as { id: string }).id;
        }),
      );
      ids.push(...batch);
    }
    await waitFor(`${newest} messages stored in ${roomId}`, async () => (await store.newestSeq(roomId, 'comment')) >= newest);
    return ids;
  }

  it('answers exactly what Redis answers, for random cursors and limits, deletions included; older cursors go to Redis', async () => {
    const room = uniqueRoom('same');
    const ids = await fill(system.url, room, 90);
    // The first poll loads the room's window; from then on the signals keep it.
    await poll(system.url, room, { types: 'comment' });
    for (const i of [85, 60, 3]) assert.equal(await store.deleteMessage(room, 'comment', ids[i] as string), true);
    await waitFor('the deletions to reach memory', async () => !(await poll(system.url, room, { types: 'comment' })).messages.some((m) => m.id === ids[85]));
    await fill(system.url, room, 5, 95);

    const before = await sources(system.url);
    let olderThanMemory = 0;
    let inMemory = 0;
    for (let i = 0; i < 150; i++) {
      const cursor = i % 10 === 0 ? null : Math.floor(Math.random() * 100);
      const limit = 1 + Math.floor(Math.random() * 60);
      const page = await poll(system.url, room, { types: 'comment', limit, ...(cursor === null ? {} : { cursor: encodeCursor({ comment: cursor }) }) });
      const expected = await store.readSince(room, 'comment', cursor, limit);
      const what = `cursor ${cursor}, limit ${limit}`;
      assert.deepEqual(page.messages, expected.messages.map((m) => JSON.parse(m) as unknown), what);
      assert.equal(decodeCursor(page.cursor)?.comment, expected.cursorSeq, what);
      assert.equal(page.skipped, expected.skipped, what);
      if (cursor !== null && cursor < 95 - WINDOW) olderThanMemory++;
      // Memory holds the newest WINDOW messages (seqs above 55 at least): these it must answer.
      if (cursor === null ? limit <= WINDOW : cursor >= 95 - WINDOW && cursor <= 95) inMemory++;
    }
    const answered = await sources(system.url);
    assert.ok(answered.memory - before.memory >= inMemory, `memory answered ${answered.memory - before.memory} of 150, ${inMemory} within its window`);
    assert.ok(answered.redis - before.redis >= olderThanMemory, `${olderThanMemory} cursors older than memory, ${answered.redis - before.redis} Redis answers`);

    // A full page from memory tells the poller to come back at once (PollPace), as Redis answers do.
    const memoryBefore = (await sources(system.url)).memory;
    const full = await poll(system.url, room, { types: 'comment', cursor: encodeCursor({ comment: 90 }), limit: 2 });
    assert.equal((await sources(system.url)).memory - memoryBefore, 1);
    assert.equal(full.messages.length, 2);
    assert.equal(full.retryAfterMs, MIN_RETRY_MS);

    // A cursor below what memory holds: every message after it, from Redis, nothing skipped.
    const redisBefore = (await sources(system.url)).redis;
    const old = await poll(system.url, room, { types: 'comment', cursor: encodeCursor({ comment: 1 }), limit: 200 });
    assert.equal((await sources(system.url)).redis - redisBefore, 1);
    assert.equal(old.skipped, false);
    assert.ok(old.messages.length >= 90, `${old.messages.length} messages after seq 1`);
    assert.deepEqual(old.messages, (await store.readSince(room, 'comment', 1, 200)).messages.map((m) => JSON.parse(m) as unknown));
    for (const i of [85, 60, 3]) assert.ok(!old.messages.some((m) => m.id === ids[i]), `deleted message ${i} in the answer`);
  });

  it('many small rooms polled every 500 ms cost at most 0.1 Redis commands per poll, and every comment is seen within a poll interval', async (t) => {
    const measure = (url: string, prefix: string) =>
      measurePollCost({ url, redisUrl: redis.url, token: tokenFor('flow'), rooms: Array.from({ length: 200 }, (_, i) => uniqueRoom(`${prefix}${i}`)), polls: 1600 });
    // When each (room, seq) was announced, heard as the front hears it.
    const announced = new Map<string, number>();
    const listener = await store.signals.subscribe(channels.allAdvanced(), (_channel, text) => {
      for (const e of JSON.parse(text) as { roomId: string; seq: number }[]) announced.set(`${e.roomId}\n${e.seq}`, Date.now());
    });
    const run = await measure(system.url, 'many').finally(() => listener.close());
    t.diagnostic(`memory: ${run.polls} polls in ${run.seconds} s, ${run.comments} comments: ${run.perPoll.toFixed(3)} Redis commands per poll`);
    assert.ok(run.perPoll <= 0.1, `${run.perPoll.toFixed(3)} Redis commands per poll`);

    // Each comment is in the first poll of its room that started once its advance was announced
    // (100 ms later: the front hears it on its own connection), or an earlier one.
    let worst = 0;
    let checked = 0;
    for (const [id, { room, at }] of run.accepted) {
      const list = run.pollsOf.get(room) ?? [];
      const seen = list.find((p) => p.messages.some((m) => m.id === id));
      assert.ok(seen, `comment ${id} never seen in ${room}`);
      const seq = seen.messages.find((m) => m.id === id)?.seq as number;
      // An advance may cover several comments: the one that names this seq or a later one.
      let heard = Infinity;
      for (const [key, when] of announced) {
        const [r, s] = key.split('\n');
        if (r === room && Number(s) >= seq && when < heard) heard = when;
      }
      assert.ok(heard < Infinity, `no advance heard for comment ${id}`);
      const due = list.find((p) => p.started >= heard + 100);
      if (due) {
        checked++;
        assert.ok(seen.started <= due.started, `comment ${id} seen ${seen.started - due.started} ms after the poll that should have had it`);
      }
      worst = Math.max(worst, seen.started - at);
    }
    assert.ok(checked >= run.comments / 2, `${checked} comments had a poll due`);
    t.diagnostic(`longest 202 -> poll that saw it: ${worst} ms`);

    // The same flow with the memory off: every poll reads Redis (the path before this memory).
    const off = await startStandalone(config({ pollMemoryStreams: 0 }), logger);
    try {
      const before = await measure(off.url, 'off');
      t.diagnostic(`Redis path: ${before.polls} polls: ${before.perPoll.toFixed(3)} Redis commands per poll`);
      assert.ok(before.perPoll >= 1, `without memory each poll reads Redis: ${before.perPoll.toFixed(3)}`);
    } finally {
      await off.stop();
    }
  });

  it('keeps at most its cap of streams, drops idle ones, and catches up after a lost subscription', async () => {
    const write = createRedis(redis.url);
    await waitReady(write);
    const own = new RedisStore({ write, retention: 1000, dedupWindow: 1000, onlineTtlMs: 90_000 });
    const memory = new PollMemory({ store: own, signals: own.signals, maxStreams: 10, window: WINDOW, idleMs: 600, logger });
    await memory.start();
    try {
      const rooms = Array.from({ length: 15 }, (_, i) => uniqueRoom(`cap${i}`));
      for (const room of rooms) await own.append(room, 'comment', [{ id: `${room}-1`, json: '{"id":"x","type":"comment","ts":1}' }]);
      for (const room of rooms) assert.ok(await memory.read(room, [{ type: 'comment', cursorSeq: null }], 10));
      assert.equal(memory.size, 10);
      // The least recently polled left: polling the first room loads it again.
      await memory.read(rooms[0] as string, [{ type: 'comment', cursorSeq: null }], 10);
      assert.equal(memory.size, 10);
      await waitFor('idle streams to leave', () => memory.size === 0, 5000);

      // An append with no signal (as when a signal is lost): memory does not see it, no timer reads it.
      const room = rooms[1] as string;
      const seen = async () => (await memory.read(room, [{ type: 'comment', cursorSeq: 1 }], 10))?.get('comment')?.messages.length ?? -1;
      // Another stream, left idle: its sweep proves the memory's timer ran after the append.
      const idle = rooms[2] as string;
      assert.ok(await memory.read(idle, [{ type: 'comment', cursorSeq: null }], 10));
      assert.equal(await seen(), 0);
      await own.append(room, 'comment', [{ id: `${room}-2`, json: '{"id":"y","type":"comment","ts":2}' }]);
      const answers: number[] = [];
      await waitFor('the idle stream swept after the append', async () => {
        answers.push(await seen());
        return memory.size === 1;
      }, 5000);
      assert.ok(answers.every((n) => n === 0), `no timer read the append: ${answers.join(',')}`);
      // The subscription drops and comes back: memory answers nothing until it has caught up, then the new message.
      const admin = new Redis(redis.url);
      try {
        await admin.client('KILL', 'TYPE', 'pubsub');
      } finally {
        admin.disconnect();
      }
      await waitFor('memory to catch up after resubscribing', async () => (await seen()) === 1, 5000);
      assert.equal(memory.isLive, true);
    } finally {
      memory.stop();
      write.disconnect();
    }
  });
});
