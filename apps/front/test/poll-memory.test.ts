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
import { decodeCursor, encodeCursor } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createRedis, RedisStore, waitReady } from '@danmaku/store';
import { sleep, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { PollMemory } from '../src/cache/memory.js';
import { commandStats, metric, metrics, poll, send, totalDelta } from './hot-helpers.js';

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
    }
    const answered = await sources(system.url);
    assert.ok(answered.memory - before.memory >= 60, `memory answered ${answered.memory - before.memory} of 150`);
    assert.ok(answered.redis - before.redis >= olderThanMemory, `${olderThanMemory} cursors older than memory, ${answered.redis - before.redis} Redis answers`);

    // A cursor below what memory holds: every message after it, from Redis, nothing skipped.
    const redisBefore = (await sources(system.url)).redis;
    const old = await poll(system.url, room, { types: 'comment', cursor: encodeCursor({ comment: 1 }), limit: 200 });
    assert.equal((await sources(system.url)).redis - redisBefore, 1);
    assert.equal(old.skipped, false);
    assert.ok(old.messages.length >= 90, `${old.messages.length} messages after seq 1`);
    assert.deepEqual(old.messages, (await store.readSince(room, 'comment', 1, 200)).messages.map((m) => JSON.parse(m) as unknown));
    for (const i of [85, 60, 3]) assert.ok(!old.messages.some((m) => m.id === ids[i]), `deleted message ${i} in the answer`);
  });

  /**
   * 200 rooms, each polled every 500 ms (or as fast as a loaded machine allows) with a cursor
   * chain, and one comment per 20 polls into a random one of them: 20 comments a second at the
   * full pace, paced by polls so that the ratio holds on a slow machine too. The sends' own
   * commands are measured apart: the same number into the same rooms before anyone polls them.
   * The servers' own timers (which include per-room ones a send starts) are measured idle, once
   * every room has had a comment, and taken off by time.
   */
  async function measure(url: string, rooms: string[], totalPolls: number) {
    // The moderation mirror reloads every room a comment went to every few seconds, in bursts
    // (two commands a room): counted by its own metric and taken off, as the sends' own work.
    const mirrorReloads = async () => metric(await metrics(url), 'danmaku_moderation_mirror_reloads_total');
    const snapshot = async () => ({ commands: await commandStats(redis.url), reloads: await mirrorReloads() });
    const counted = async (since: { commands: Record<string, number>; reloads: number }) => {
      const now = await snapshot();
      return totalDelta(since.commands, now.commands) - 2 * (now.reloads - since.reloads);
    };
    const INTERVAL = 500;
    const POLLS_PER_COMMENT = 20;
    const token = tokenFor('flow');
    const cursors = new Map<string, string>();
    const sendOne = async (room: string, accepted: Map<string, { room: string; at: number }>) => {
      const at = Date.now();
      const res = await send(url, token, room, { type: 'comment', content: `c${accepted.size}` });
      assert.equal(res.status, 202);
      accepted.set(((await res.json()) as { id: string }).id, { room, at });
    };
    const pick = (list: string[]) => list[Math.floor(Math.random() * list.length)] as string;
    const first = new Map<string, { room: string; at: number }>();
    await Promise.all(rooms.map((room) => sendOne(room, first)));
    await waitFor('a comment stored in every room', async () => (await Promise.all(rooms.map((r) => store.newestSeq(r, 'comment')))).every((n) => n >= 1));

    let stats = await snapshot();
    let started = Date.now();
    await sleep(2000);
    const idlePerMs = (await counted(stats)) / (Date.now() - started);
    const quietSent = new Map<string, { room: string; at: number }>();
    stats = await snapshot();
    started = Date.now();
    const quietSends: Promise<void>[] = [];
    for (let i = 0; i < totalPolls / POLLS_PER_COMMENT; i++) {
      quietSends.push(sendOne(pick(rooms), quietSent));
      await sleep(50);
    }
    await Promise.all(quietSends);
    await sleep(300);
    const sendsOnly = (await counted(stats)) - idlePerMs * (Date.now() - started);

    // Warm up: every room polled once (a stream's first poll loads it).
    await Promise.all(rooms.map(async (room) => cursors.set(room, (await poll(url, room)).cursor)));
    const accepted = new Map<string, { room: string; at: number }>();
    const pollsOf = new Map<string, { started: number; ids: string[] }[]>(rooms.map((r) => [r, []]));
    let polls = 0;
    let done = false;
    const sends: Promise<void>[] = [];
    stats = await snapshot();
    started = Date.now();
    const pollers = rooms.map(async (room, k) => {
      await sleep((k * INTERVAL) / rooms.length);
      // A second round of polls after the last comment, so that each is due in some poll.
      let after = 0;
      while (!done || after++ < 2) {
        const began = Date.now();
        const page = await poll(url, room, { cursor: cursors.get(room) as string });
        polls++;
        cursors.set(room, page.cursor);
        pollsOf.get(room)?.push({ started: began, ids: page.messages.map((m) => m.id) });
        if (!done && polls % POLLS_PER_COMMENT === 0) sends.push(sendOne(pick(rooms), accepted));
        await sleep(Math.max(0, began + INTERVAL - Date.now()));
      }
    });
    await waitFor('the polls', () => polls >= totalPolls, 120_000, 20);
    done = true;
    await Promise.all(pollers);
    await Promise.all(sends);
    const withPolls = (await counted(stats)) - idlePerMs * (Date.now() - started);
    // Scaled to the same number of sends, should the two flows differ by one.
    const sendsCost = (sendsOnly / Math.max(1, quietSent.size)) * accepted.size;
    return { perPoll: (withPolls - sendsCost) / polls, polls, sends: accepted.size, quietSends: quietSent.size, accepted, pollsOf, withPolls, sendsOnly, seconds: (Date.now() - started) / 1000 };
  }

  it('many small rooms polled every 500 ms cost at most 0.1 Redis commands per poll, and every comment is seen within a poll interval', async (t) => {
    const rooms = Array.from({ length: 200 }, (_, i) => uniqueRoom(`many${i}`));
    const run = await measure(system.url, rooms, 1600);
    t.diagnostic(`memory: ${run.polls} polls in ${run.seconds} s, ${run.sends} comments (${run.quietSends} before the polls), ${Math.round(run.withPolls)} commands beyond the background (sends alone ${Math.round(run.sendsOnly)}): ${run.perPoll.toFixed(3)} Redis commands per poll`);
    assert.ok(run.perPoll <= 0.1, `${run.perPoll.toFixed(3)} Redis commands per poll`);

    // Each comment is in the first poll of its room that started a poll interval after its 202, or an earlier one.
    let worst = 0;
    for (const [id, { room, at }] of run.accepted) {
      const list = run.pollsOf.get(room) ?? [];
      const seen = list.find((p) => p.ids.includes(id));
      assert.ok(seen, `comment ${id} never seen in ${room}`);
      const due = list.find((p) => p.started >= at + 500);
      if (due) assert.ok(seen.started <= due.started, `comment ${id} seen ${seen.started - due.started} ms after the poll that should have had it`);
      worst = Math.max(worst, seen.started - at);
    }
    t.diagnostic(`longest 202 -> poll that saw it: ${worst} ms`);

    // The same flow with the memory off: every poll reads Redis (the path before this memory).
    const off = await startStandalone(config({ pollMemoryStreams: 0 }), logger);
    try {
      const before = await measure(
        off.url,
        Array.from({ length: 200 }, (_, i) => uniqueRoom(`off${i}`)),
        1600,
      );
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
      assert.equal(await seen(), 0);
      await own.append(room, 'comment', [{ id: `${room}-2`, json: '{"id":"y","type":"comment","ts":2}' }]);
      await sleep(300);
      assert.equal(await seen(), 0);
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
