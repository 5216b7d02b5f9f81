import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '@danmaku/auth';
import { ApiError, type UnsequencedMessage } from '@danmaku/model';
import { createModeration, moderationKeys, ModerationMirror, WordFilter, type Moderation } from '@danmaku/moderation';
import { registry } from '@danmaku/observability';
import { createRedis, keys, RedisStore, waitReady, type Redis } from '@danmaku/store';
import { startRedis, testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';

const config = testConfig();
let redis: Redis;
const made: Moderation[] = [];

function moderation(overrides: Partial<Parameters<typeof createModeration>[0]> = {}, client: Redis = redis): Moderation {
  const store = new RedisStore({ write: client, retention: 100, dedupWindow: 100, onlineTtlMs: 60_000 });
  const m = createModeration({ store, rateUserMax: 3, rateIpMax: 5, rateWindowMs: 60_000, sensitiveWords: [], sensitiveMode: 'replace', wordsRefreshMs: 0, ...overrides });
  made.push(m);
  return m;
}

const viewer = (id: string): Principal => ({ id, name: id, role: 'viewer', rooms: [] });
const comment = (roomId: string, content: string, userId = 'u'): UnsequencedMessage => ({ id: `m${Math.random()}`, roomId, type: 'comment', ts: Date.now(), user: { id: userId, name: userId }, content });
const refusedWith = (status: number, code: string) => (err: unknown) => err instanceof ApiError && err.status === status && err.code === code;

before(async () => {
  redis = createRedis(config.redisUrl);
  await waitReady(redis);
});
after(async () => {
  for (const m of made) m.stop();
  await redis.quit();
});

describe('word filter', () => {
  test('replace masks every occurrence, longest word first, across case and full-width forms', () => {
    const f = new WordFilter(['bad', 'badword', ' ', '坏话'], 'replace');
    assert.equal(f.apply('a BADWORD, a bad one, ｂａｄ, 坏话!'), 'a *******, a *** one, ***, **!');
    assert.equal(f.apply('clean text'), 'clean text');
  });

  test('reject refuses with 400 content_rejected', () => {
    const f = new WordFilter(['spam'], 'reject');
    assert.throws(() => f.apply('buy SPAM now'), refusedWith(400, 'content_rejected'));
    assert.equal(f.apply('ham'), 'ham');
  });

  test('words added at run time in Redis (dm:words) are picked up', async () => {
    const own = await startRedis();
    const client = createRedis(own.url);
    try {
      await waitReady(client);
      const m = moderation({ sensitiveWords: ['alpha'] }, client);
      await client.sadd(moderationKeys.words, 'beta');
      await m.refreshWords();
      const out = await m.wordCheck(comment('r', 'alpha beta gamma'), viewer('u'), {});
      assert.equal(out?.content, '***** **** gamma');
    } finally {
      client.disconnect();
      await own.stop();
    }
  });
});

describe('content check', () => {
  test('counts characters, not UTF-16 units; strips control and bidi characters', async () => {
    const m = moderation();
    const emoji = '😀'.repeat(100);
    assert.equal(await m.contentCheck(comment('r', emoji), viewer('u'), {}), undefined, '100 emoji are 100 characters');
    await assert.rejects(async () => m.contentCheck(comment('r', emoji + 'x'), viewer('u'), {}), refusedWith(400, 'content_too_long'));
    const cleaned = await m.contentCheck(comment('r', 'hi\u0000 there\u202e  you'), viewer('u'), {});
    assert.equal(cleaned?.content, 'hi there you');
    await assert.rejects(async () => m.contentCheck(comment('r', '\u200b\u200b'), viewer('u'), {}), refusedWith(400, 'invalid_request'));
  });
});

describe('rate limits (Redis, shared)', () => {
  test('per user over every room, and per IP over every user', async () => {
    const m = moderation();
    const user = `rl-${uniqueRoom()}`;
    for (let i = 0; i < 3; i++) await m.rateCheck(comment(uniqueRoom(), 'x'), viewer(user), {});
    await assert.rejects(async () => m.rateCheck(comment(uniqueRoom(), 'x'), viewer(user), {}), (err: unknown) => {
      assert.ok(err instanceof ApiError && err.status === 429 && err.code === 'rate_limited');
      assert.ok((err.retryAfter ?? 0) >= 1 && (err.retryAfter ?? 0) <= 60);
      return true;
    });

    const ip = `ip-${uniqueRoom()}`;
    for (let i = 0; i < 5; i++) await m.rateCheck(comment('r', 'x'), viewer(`${ip}-u${i}`), { ip });
    await assert.rejects(async () => m.rateCheck(comment('r', 'x'), viewer(`${ip}-u9`), { ip }), refusedWith(429, 'rate_limited'));
    await m.rateCheck(comment('r', 'x'), viewer(`${ip}-u9`), { ip: `${ip}-other` });
  });

  test('allow-listed addresses skip the per-IP limit, not the per-user one', async () => {
    const ip = `allowed-${uniqueRoom()}`;
    const m = moderation({ rateIpMax: 1, rateIpAllow: [ip] });
    for (let i = 0; i < 4; i++) await m.rateCheck(comment('r', 'x'), viewer(`${ip}-u${i}`), { ip });
    const user = `${ip}-same`;
    for (let i = 0; i < 3; i++) await m.rateCheck(comment('r', 'x'), viewer(user), { ip });
    await assert.rejects(async () => m.rateCheck(comment('r', 'x'), viewer(user), { ip }), refusedWith(429, 'rate_limited'));
  });

  test('a second instance on the same Redis shares the budget', async () => {
    const a = moderation();
    const b = moderation();
    const user = `rl2-${uniqueRoom()}`;
    await a.rateCheck(comment('r', 'x'), viewer(user), {});
    await b.rateCheck(comment('r', 'x'), viewer(user), {});
    await a.rateCheck(comment('r', 'x'), viewer(user), {});
    await assert.rejects(async () => b.rateCheck(comment('r', 'x'), viewer(user), {}), refusedWith(429, 'rate_limited'));
  });
});

describe('room gate', () => {
  test('ban beats mute beats slow mode; moderators pass; a refused send does not use the slow-mode slot', async () => {
    const m = moderation();
    const room = uniqueRoom('gate');
    const check = (userId: string, principal = viewer(userId)) => m.roomCheck(comment(room, 'x', userId), principal, {});
    await m.ban(room, 'both');
    await m.mute(room, 'both', 60);
    await assert.rejects(async () => check('both'), refusedWith(403, 'banned'));
    await m.unban(room, 'both');
    await assert.rejects(async () => check('both'), refusedWith(403, 'muted'));

    await m.setSlowMode(room, 30);
    await assert.rejects(async () => check('both'), refusedWith(403, 'muted'));
    await m.unmute(room, 'both');
    await check('both');
    await assert.rejects(async () => check('both'), refusedWith(429, 'slow_mode'));

    const streamer: Principal = { id: 'boss', name: 'boss', role: 'streamer', rooms: [room] };
    await m.ban(room, 'boss');
    await check('boss', streamer);
    await check('boss', streamer);
    const state = await m.room(room);
    assert.equal(state.slowModeSec, 30);
    assert.equal(state.banned, 1);
    // The ban for good is what the room-entry checks (HTTP enter, socket join) read.
    const store = new RedisStore({ write: redis, retention: 100, dedupWindow: 100, onlineTtlMs: 60_000 });
    assert.equal(await store.isBanned(room, 'someone'), false);
    assert.equal(await store.isBanned(room, 'boss'), true);
  });

  test('a timed ban ends by itself', async () => {
    const m = moderation();
    const room = uniqueRoom('tban');
    await m.ban(room, 'u1', 1);
    await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {}), refusedWith(403, 'banned'));
    await waitFor('ban to end', async () => {
      await m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {});
      return true;
    }, 4000, 200);
  });

  test('Redis away: banned and muted users stay refused (local copy), others pass and are counted, fast', async () => {
    const own = await startRedis({ port: 17101 });
    const client = createRedis(own.url, { commandTimeoutMs: 300 });
    const other = createRedis(own.url, { commandTimeoutMs: 300 });
    try {
      await Promise.all([waitReady(client), waitReady(other)]);
      const m = moderation({ mirrorRefreshMs: 60_000 }, client);
      const streamer = moderation({ mirrorRefreshMs: 60_000 }, other);
      const room = uniqueRoom('down');
      await m.mute(room, 'u1', 60);
      // The room is checked once (its copy loads), then changed from another process: the copy
      // follows through pub/sub, not through the (here very slow) periodic reload.
      await m.roomCheck(comment(room, 'x', 'u2'), viewer('u2'), {});
      await waitFor('the copy to load', () => m.mirror.verdict(room, 'u1')?.code === 'muted');
      await streamer.ban(room, 'u3');
      await streamer.ban(room, 'u5', 60);
      await waitFor('the ban to reach the other copy', () => m.mirror.verdict(room, 'u3')?.code === 'banned' && m.mirror.verdict(room, 'u5')?.code === 'banned');
      await streamer.mute(room, 'u4', 60);
      await streamer.unmute(room, 'u4');
      await waitFor('the unmute to reach the other copy', () => m.mirror.verdict(room, 'u4') === null);
      await own.stop();
      const started = Date.now();
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {}), refusedWith(403, 'muted'));
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u3'), viewer('u3'), {}), refusedWith(403, 'banned'));
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u5'), viewer('u5'), {}), refusedWith(403, 'banned'));
      assert.equal(await m.roomCheck(comment(room, 'x', 'u2'), viewer('u2'), {}), undefined);
      assert.equal(await m.roomCheck(comment(room, 'x', 'u4'), viewer('u4'), {}), undefined);
      assert.equal(await m.rateCheck(comment(room, 'x', 'u2'), viewer('u2'), { ip: '1.2.3.4' }), undefined);
      assert.ok(Date.now() - started < 3000, `checks took ${Date.now() - started} ms`);
      await assert.rejects(m.mute(room, 'u2', 60), refusedWith(503, 'redis_unavailable'));
    } finally {
      client.disconnect();
      other.disconnect();
      await own.stop();
    }
  });

  test('the local copy is bounded: least recently used rooms are forgotten', () => {
    const rooms = Array.from({ length: 5 }, (_, i) => uniqueRoom(`lru${i}`));
    const mirror = new ModerationMirror({ redis, mutesKey: moderationKeys.mutes, settingsKey: moderationKeys.settings, maxRooms: 3 });
    try {
      for (const room of rooms) mirror.touch(room);
      assert.equal(mirror.size, 3);
    } finally {
      mirror.stop();
    }
  });

  test('a room used again (a second or more later) outlives rooms used before it', async () => {
    const [a, b, c, d] = Array.from({ length: 4 }, (_, i) => uniqueRoom(`lru-again${i}`)) as [string, string, string, string];
    const mirror = new ModerationMirror({ redis, mutesKey: moderationKeys.mutes, settingsKey: moderationKeys.settings, maxRooms: 3 });
    /** The mirrors' first loads so far (danmaku_moderation_mirror_reloads_total, reason "first"). */
    const firstLoads = async (): Promise<number> =>
      (await registry.getSingleMetric('danmaku_moderation_mirror_reloads_total')?.get())?.values.find((v) => v.labels.reason === 'first')?.value ?? 0;
    try {
      const loadsBefore = await firstLoads();
      const t0 = Date.now();
      mirror.touch(a, t0);
      mirror.touch(b, t0);
      mirror.touch(c, t0);
      mirror.touch(a, t0 + 1500);
      mirror.touch(d, t0 + 1500);
      // The first loads (empty rooms, one per room touched) settle before the copies are marked.
      await waitFor('the four first loads', async () => (await firstLoads()) >= loadsBefore + 4);
      for (const room of [a, b, c, d]) mirror.apply(room, 'ban', 'u1', Number.POSITIVE_INFINITY);
      assert.deepEqual(
        [a, b, c, d].map((room) => mirror.verdict(room, 'u1')?.code ?? null),
        ['banned', null, 'banned', 'banned'],
      );
    } finally {
      mirror.stop();
    }
  });
});

describe('shared rates: counted locally, synced to Redis in the background', () => {
  const take = (m: Moderation, user: string, ip?: string) =>
    Promise.resolve(m.rateCheck(comment('r', 'x', user), viewer(user), ip ? { ip } : {})).then(
      (): number => 202,
      (err: unknown) => {
        if (err instanceof ApiError && err.code === 'rate_limited') return 429;
        throw err;
      },
    );

  test('a send inside its local share makes no Redis call; one sync adds the counts, with the window', async () => {
    const m = moderation({ rateUserMax: 10, rateSyncMs: 60_000 });
    const user = `sr-${uniqueRoom()}`;
    for (let i = 0; i < 5; i++) assert.equal(await take(m, user), 202);
    assert.equal(await redis.get(moderationKeys.rateUser(user)), null, 'nothing was written on the request path');
    await m.rates.sync();
    assert.equal(await redis.get(moderationKeys.rateUser(user)), '5');
    const ttl = await redis.pttl(moderationKeys.rateUser(user));
    assert.ok(ttl > 55_000 && ttl <= 60_000, `the window: ${ttl} ms`);
    // The window starts with the first send, not with the sync that brought it to Redis.
    const late = `sr-late-${uniqueRoom()}`;
    await take(m, late);
    await new Promise((resolve) => setTimeout(resolve, 400));
    await m.rates.sync();
    const lateTtl = await redis.pttl(moderationKeys.rateUser(late));
    assert.ok(lateTtl > 55_000 && lateTtl <= 59_600, `the window of a counter synced 400 ms after its first send: ${lateTtl} ms left`);
    // The background sync does the same by itself.
    const quick = moderation({ rateUserMax: 10, rateSyncMs: 50 });
    const other = `sr2-${uniqueRoom()}`;
    for (let i = 0; i < 3; i++) await take(quick, other);
    await waitFor('the background sync', async () => (await redis.get(moderationKeys.rateUser(other))) === '3', 2000, 20);
  });

  test('one process holds the limit exactly, sends in flight together included; Retry-After is the window left', async () => {
    const m = moderation({ rateUserMax: 4, rateSyncMs: 60_000 });
    const user = `sr3-${uniqueRoom()}`;
    const statuses = await Promise.all(Array.from({ length: 10 }, () => take(m, user)));
    assert.equal(statuses.filter((s) => s === 202).length, 4, JSON.stringify(statuses));
    await assert.rejects(async () => m.rateCheck(comment('r', 'x', user), viewer(user), {}), (err: unknown) => {
      assert.ok(err instanceof ApiError && err.code === 'rate_limited');
      assert.ok((err.retryAfter ?? 0) >= 59 && (err.retryAfter ?? 0) <= 60, `Retry-After ${err.retryAfter}`);
      return true;
    });
    // Past the local share the sends asked Redis: it holds every counted send.
    assert.equal(await redis.get(moderationKeys.rateUser(user)), '4');
  });

  test('two processes: past the local share Redis decides, so the overshoot is bounded; after a sync both refuse', async () => {
    const a = moderation({ rateUserMax: 10, rateSyncMs: 60_000 });
    const b = moderation({ rateUserMax: 10, rateSyncMs: 60_000 });
    const user = `sr4-${uniqueRoom()}`;
    const statuses: number[] = [];
    for (let i = 0; i < 30; i++) statuses.push(await take(i % 2 ? b : a, user));
    const accepted = statuses.filter((s) => s === 202).length;
    // Never synced in the background here (the worst case): each granted 5 on its own knowledge.
    assert.ok(accepted >= 10 && accepted <= 15, `accepted ${accepted}: ${JSON.stringify(statuses)}`);
    await Promise.all([a.rates.sync(), b.rates.sync()]);
    assert.equal(await take(a, user), 429);
    assert.equal(await take(b, user), 429);
    // A share of 0 asks Redis for every send: exact over any number of processes.
    const c = moderation({ rateUserMax: 10, rateLocalShare: 0, rateSyncMs: 60_000 });
    const d = moderation({ rateUserMax: 10, rateLocalShare: 0, rateSyncMs: 60_000 });
    const strict = `sr5-${uniqueRoom()}`;
    const exact: number[] = [];
    for (let i = 0; i < 30; i++) exact.push(await take(i % 2 ? d : c, strict));
    assert.equal(exact.filter((s) => s === 202).length, 10);
  });

  test('Redis away: each process still holds the limit on its own, fast, and its counts reach Redis when it is back', async () => {
    const own = await startRedis();
    const client = createRedis(own.url, { commandTimeoutMs: 300 });
    let back: Awaited<ReturnType<typeof startRedis>> | null = null;
    try {
      await waitReady(client);
      const m = moderation({ rateUserMax: 4, rateIpMax: 100, rateSyncMs: 50 }, client);
      await own.stop();
      const started = Date.now();
      const statuses: number[] = [];
      for (let i = 0; i < 6; i++) statuses.push(await take(m, 'u-away', '1.2.3.4'));
      assert.deepEqual(statuses, [202, 202, 202, 202, 429, 429]);
      assert.ok(Date.now() - started < 3000, `checks took ${Date.now() - started} ms`);
      back = await startRedis({ port: own.port });
      await waitFor('the counts kept through the outage to reach Redis', async () => (await client.get(moderationKeys.rateUser('u-away')).catch(() => null)) === '4', 10_000, 100);
      assert.equal(await client.get(moderationKeys.rateIp('1.2.3.4')), '4');
    } finally {
      client.disconnect();
      await own.stop();
      await back?.stop();
    }
  });

  test('moderators pass the room gate but not the rate limit', async () => {
    const m = moderation({ rateUserMax: 3 });
    const room = uniqueRoom('modrate');
    const streamer: Principal = { id: `boss-${room}`, name: 'boss', role: 'streamer', rooms: [room] };
    await m.ban(room, streamer.id);
    const send = () => Promise.all(m.checks.map((check) => check(comment(room, 'x', streamer.id), streamer, {})));
    for (let i = 0; i < 3; i++) await send();
    await assert.rejects(send(), refusedWith(429, 'rate_limited'));
  });
});

describe('room gate from the local copy', () => {
  test('a send costs no Redis call once the room is loaded, unless the room is in slow mode', async () => {
    const own = await startRedis();
    const client = createRedis(own.url);
    const probe = createRedis(own.url);
    try {
      await Promise.all([waitReady(client), waitReady(probe)]);
      const m = moderation({ mirrorRefreshMs: 60_000 }, client);
      const room = uniqueRoom('local');
      await m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {});
      // The commands Redis ran, by name, but the probe's INFO and the pub/sub subscription's.
      const calls = async (only?: readonly string[]) => {
        let n = 0;
        for (const [, name, count] of (await probe.info('commandstats')).matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) {
          if (only ? only.includes(name as string) : name !== 'info' && name !== 'subscribe') n += Number(count);
        }
        return n;
      };
      const before = await calls();
      for (let i = 0; i < 20; i++) await m.roomCheck(comment(room, 'x', `u${i}`), viewer(`u${i}`), {});
      assert.equal((await calls()) - before, 0);
      await m.setSlowMode(room, 30);
      const scripts = ['evalsha', 'eval'];
      const slowBefore = await calls(scripts);
      await m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {});
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {}), refusedWith(429, 'slow_mode'));
      // Each claim is one script call: EVALSHA, or EVAL the first time this Redis sees the script.
      const claims = (await calls(scripts)) - slowBefore;
      assert.ok(claims >= 2 && claims <= 3, `${claims} script calls for two sends in slow mode`);
    } finally {
      client.disconnect();
      probe.disconnect();
      await own.stop();
    }
  });

  test('a change made on another process reaches the copy: ban, mute, slow mode, and their undoing', async () => {
    const a = moderation({ mirrorRefreshMs: 60_000 });
    const b = moderation({ mirrorRefreshMs: 60_000 });
    const room = uniqueRoom('across');
    const check = (userId: string) => b.roomCheck(comment(room, 'x', userId), viewer(userId), {});
    await waitFor('the copy to hear changes', () => b.mirror.listening);
    await check('u1');
    await a.ban(room, 'u1');
    await waitFor('the ban to reach the other copy', () => b.mirror.verdict(room, 'u1')?.code === 'banned');
    await assert.rejects(async () => check('u1'), refusedWith(403, 'banned'));
    await a.mute(room, 'u2', 60);
    await waitFor('the mute', () => b.mirror.verdict(room, 'u2')?.code === 'muted');
    await assert.rejects(async () => check('u2'), refusedWith(403, 'muted'));
    await a.setSlowMode(room, 30);
    await waitFor('slow mode', () => b.mirror.slowSec(room) === 30);
    await check('u3');
    await assert.rejects(async () => check('u3'), refusedWith(429, 'slow_mode'));
    await a.setSlowMode(room, 0);
    await a.unban(room, 'u1');
    await a.unmute(room, 'u2');
    await waitFor('the undoing', () => b.mirror.slowSec(room) === 0 && b.mirror.verdict(room, 'u1') === null && b.mirror.verdict(room, 'u2') === null);
    await check('u1');
    await check('u2');
    await check('u3');
  });

  test('a change made while the copy is loading is not lost to that load', async () => {
    const b = moderation({ mirrorRefreshMs: 60_000 });
    const room = uniqueRoom('race');
    // The first load's reads go out first; the ban is written behind them on the same connection,
    // so the load reads the room without it, and the change is applied while the load is in flight.
    const loading = b.mirror.ready(room);
    const written = redis.zadd(keys.bans(room), '+inf', 'u1');
    b.mirror.apply(room, 'ban', 'u1', Number.POSITIVE_INFINITY);
    await Promise.all([loading, written]);
    assert.equal(b.mirror.verdict(room, 'u1')?.code, 'banned');
  });

  test('Redis away: banned and muted users stay refused (local copy), others pass, fast', async () => {
    const own = await startRedis();
    const client = createRedis(own.url, { commandTimeoutMs: 300 });
    try {
      await waitReady(client);
      const m = moderation({ mirrorRefreshMs: 60_000 }, client);
      const room = uniqueRoom('gdown');
      await m.mute(room, 'u1', 60);
      await m.ban(room, 'u3');
      await m.roomCheck(comment(room, 'x', 'u2'), viewer('u2'), {});
      await own.stop();
      const started = Date.now();
      for (const check of [m.roomCheck, m.rateCheck]) assert.equal(await check(comment(room, 'x', 'u2'), viewer('u2'), { ip: '1.2.3.4' }), undefined);
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u1'), viewer('u1'), {}), refusedWith(403, 'muted'));
      await assert.rejects(async () => m.roomCheck(comment(room, 'x', 'u3'), viewer('u3'), {}), refusedWith(403, 'banned'));
      // A room never loaded: nothing known, let through (and counted as such), without waiting.
      assert.equal(await m.roomCheck(comment(uniqueRoom('never'), 'x', 'u2'), viewer('u2'), {}), undefined);
      assert.ok(Date.now() - started < 3000, `checks took ${Date.now() - started} ms`);
    } finally {
      client.disconnect();
      await own.stop();
    }
  });
});
