/**
 * Likes are aggregated: many taps on a front become one INCRBY per room per flush (counted by
 * a private Redis's INFO commandstats), the room reports the total, and bad input is a 4xx.
 * Enter messages: a small room gets "X joined" once per viewer, a big room gets none.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createRedis, roomKeys } from '@danmaku/store';
import { startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { commandStats, delta, poll, post, send } from './hot-helpers.js';

describe('likes and enter messages', () => {
  let redis: TestRedis;
  let system: Standalone;

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(
      testConfig({ redisUrl: redis.url, likesFlushMs: 300, bigRoomOnline: 3, bigRoomPollRate: 1_000_000, rateUserMax: 1_000_000, rateIpMax: 1_000_000 }),
      createLogger('test', 'silent'),
    );
  });
  after(async () => {
    await system.stop();
    await redis.stop();
  });

  it('aggregates taps into one INCRBY per room per flush and reports the total', async () => {
    const room = uniqueRoom('likes');
    const other = uniqueRoom('likes2');
    const token = tokenFor('fan');
    const before = await commandStats(redis.url);
    const started = Date.now();
    const TAPS = 400;
    const answers = await Promise.all(
      Array.from({ length: TAPS }, (_, i) => post(system.url, `/v1/rooms/${i % 4 === 0 ? other : room}/likes`, token, i % 2 === 0 ? { count: 2 } : undefined)),
    );
    for (const res of answers) assert.equal(res.status, 202);
    assert.deepEqual(await answers[0]?.json(), { ok: true });
    // Totals include what the front has not flushed yet, so they are right at once...
    const expected: Record<string, number> = { [room]: 0, [other]: 0 };
    for (let i = 0; i < TAPS; i++) {
      const r = i % 4 === 0 ? other : room;
      expected[r] = (expected[r] ?? 0) + (i % 2 === 0 ? 2 : 1);
    }
    const total = async (r: string) => ((await (await fetch(`${system.url}/v1/rooms/${r}`)).json()) as { likes: number }).likes;
    assert.equal(await total(room), expected[room]);
    assert.equal(await total(other), expected[other]);
    // ...and after the flush they are in Redis, at the cost of a handful of INCRBYs, not 400.
    const reader = createRedis(redis.url);
    try {
      await waitFor('both rooms flushed to Redis', async () => {
        const [a, b] = await Promise.all([reader.get(roomKeys.likes(room)), reader.get(roomKeys.likes(other))]);
        return Number(a) === expected[room] && Number(b) === expected[other];
      });
    } finally {
      reader.disconnect();
    }
    const after = await commandStats(redis.url);
    const incrs = delta(before, after, ['incrby']);
    // At most one INCRBY per room per flush while the taps came in (slower on a busy machine).
    const flushes = Math.ceil((Date.now() - started) / 300) + 1;
    assert.ok(incrs >= 2 && incrs <= 2 * flushes && incrs < TAPS / 10, `${TAPS} taps cost ${incrs} INCRBY calls over ${flushes} flushes`);
    assert.equal(await total(room), expected[room]);
  });

  it('refuses bad likes with a clear 4xx', async () => {
    const room = uniqueRoom('badlikes');
    const token = tokenFor('fan');
    const cases: [string | null, unknown, number, string][] = [
      [null, { count: 1 }, 401, 'missing_token'],
      [token, { count: 0 }, 400, 'invalid_request'],
      [token, { count: 1001 }, 400, 'invalid_request'],
      [token, { count: 'many' }, 400, 'invalid_request'],
      [token, { count: 1, extra: true }, 400, 'invalid_request'],
    ];
    for (const [who, body, status, code] of cases) {
      const res = await post(system.url, `/v1/rooms/${room}/likes`, who, body);
      assert.equal(res.status, status, JSON.stringify(body));
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, code);
    }
    assert.equal((await post(system.url, '/v1/rooms/bad%20room/likes', token, { count: 1 })).status, 400);
  });

  it('announces viewers entering a small room once each, and nobody entering a big one', async () => {
    const sentinel = async (roomId: string): Promise<void> => {
      assert.equal((await send(system.url, tokenFor('ann'), roomId, { type: 'comment', content: 'sentinel' })).status, 202);
      await waitFor(`the sentinel comment in ${roomId}`, async () => (await poll(system.url, roomId, { types: 'comment' })).messages.some((m) => m.content === 'sentinel'));
    };
    const small = uniqueRoom('small');
    const big = uniqueRoom('big');
    for (const u of ['ann', 'bob', 'ann']) assert.equal((await post(system.url, `/v1/rooms/${small}/enter`, tokenFor(u))).status, 200);
    await waitFor('two enter messages', async () => (await poll(system.url, small, { types: 'enter' })).messages.length >= 2);
    // A sentinel comment after the enters (a third viewer would make the room big), on the room's
    // same bus partition: once it is stored, every enter before it was stored or dropped.
    await sentinel(small);
    const entered = (await poll(system.url, small, { types: 'enter' })).messages.map((m) => m.user.id);
    assert.deepEqual(entered, ['ann', 'bob'], 'a re-entering viewer is announced once');

    for (const u of ['u1', 'u2', 'u3', 'u4', 'u5']) assert.equal((await post(system.url, `/v1/rooms/${big}/enter`, tokenFor(u))).status, 200);
    await waitFor('the first two (small room then) announced', async () => (await poll(system.url, big, { types: 'enter' })).messages.length >= 2);
    await sentinel(big);
    const bigEntered = (await poll(system.url, big, { types: 'enter' })).messages.map((m) => m.user.id);
    assert.deepEqual(bigEntered, ['u1', 'u2'], 'from the third viewer on (bigRoomOnline = 3) the room is big: no more enter messages');
  });
});
