/** The switchboard against a private Redis: snapshot, set, reset, gears, partitioner, read-only check. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { ApiError, partitionFor, streamKey, type UnsequencedMessage } from '@danmaku/model';
import { startRedis, type TestRedis } from '@danmaku/testkit';
import { DEFAULT_SWITCHES, GEAR_LEASE_MS, GEARS_KEY, SWITCHES_KEY, Switchboard, gearPartitioner, parseGear, publishGear, readOnlyCheck, sweepGears } from '../src/index.js';

describe('switchboard', () => {
  let redis: TestRedis;
  let client: Redis;
  before(async () => {
    redis = await startRedis();
    client = new Redis(redis.url);
  });
  after(async () => {
    client.disconnect();
    await redis.stop();
  });

  it('starts from the defaults, applies a change at once here and after a refresh elsewhere', async () => {
    const here = await new Switchboard({ redis: client, refreshMs: 60_000 }).start();
    const there = await new Switchboard({ redis: client, refreshMs: 60_000 }).start();
    assert.deepEqual(here.get(), DEFAULT_SWITCHES);
    await here.set({ likes: false, readOnlyRooms: ['r1'], bigRoomSampleRatio: 0.25 });
    assert.equal(here.get().likes, false);
    assert.equal(there.get().likes, true, 'the other process still has its old snapshot');
    await there.refresh();
    assert.equal(there.get().likes, false);
    assert.equal(there.isReadOnly('r1'), true);
    assert.equal(there.isReadOnly('r2'), false);
    assert.equal(there.get().bigRoomSampleRatio, 0.25);
    await here.reset();
    assert.deepEqual(here.get(), DEFAULT_SWITCHES);
    here.stop();
    there.stop();
  });

  it('ignores hand-edited garbage instead of breaking', async () => {
    await client.hset(SWITCHES_KEY, 'likes', 'not json', 'pollIntervalMs', '"text"', 'unknown', 'true', 'forcePolling', 'true');
    const board = await new Switchboard({ redis: client }).start();
    assert.equal(board.get().likes, true);
    assert.equal(board.get().pollIntervalMs, 0);
    assert.equal(board.forcePolling(), true);
    assert.equal('unknown' in board.get(), false);
    board.stop();
    await client.del(SWITCHES_KEY);
  });

  it('reads gears and spreads only streams in gears 2 and 4 over the allowed partitions', async () => {
    const board = await new Switchboard({ redis: client }).start();
    const partitions = 8;
    const hotKey = streamKey('hot', 'comment');
    const pick = gearPartitioner(board, partitions, 4);
    const used = (key: string) => new Set(Array.from({ length: 40 }, () => pick(key)));
    assert.deepEqual(used(hotKey), new Set([partitionFor(hotKey, partitions)]), 'gear 1: the home partition only');
    for (const [gear, spread] of [[2, 4], [3, 1], [4, 4]] as const) {
      await publishGear(client, hotKey, gear);
      await board.refresh();
      assert.equal(board.gear('hot', 'comment'), gear);
      assert.equal(used(hotKey).size, spread, `gear ${gear}`);
      for (const p of used(hotKey)) assert.ok(p >= 0 && p < partitions);
    }
    assert.deepEqual(board.hotStreams(), { [hotKey]: 4 });
    // Coming down waits for the lease of the higher gear to run out.
    assert.equal(await publishGear(client, hotKey, 1), false);
    assert.equal(await publishGear(client, hotKey, 1, Date.now() + GEAR_LEASE_MS + 1), true);
    await board.refresh();
    assert.equal(await client.hexists(GEARS_KEY, hotKey), 0, 'gear 1 is the absence of an entry');
    assert.equal(board.gear('hot', 'comment'), 1);
    board.stop();
  });

  it('publishes the highest gear any processor holds, until its lease runs out', async () => {
    const key = streamKey(`lease-${Date.now()}`, 'comment');
    const t = Date.now();
    // Processor A climbs to 3; processor B, seeing a calmer share of the stream, says 1, then 2.
    assert.equal(await publishGear(client, key, 3, t), true);
    assert.equal(await publishGear(client, key, 1, t + 100), false);
    assert.equal(await publishGear(client, key, 2, t + 200), false);
    assert.equal(parseGear((await client.hget(GEARS_KEY, key)) ?? '', t + 300), 3);
    // A renews; B's word still does not take.
    assert.equal(await publishGear(client, key, 3, t + 1000), true);
    assert.equal(await publishGear(client, key, 2, t + 1000 + GEAR_LEASE_MS - 1), false);
    // A stops renewing (came down or died): readers see gear 1 once the lease ran out, and the
    // next lower word replaces it.
    const expired = t + 1000 + GEAR_LEASE_MS + 1;
    assert.equal(parseGear((await client.hget(GEARS_KEY, key)) ?? '', expired), 1);
    assert.equal(await publishGear(client, key, 2, expired), true);
    assert.equal(parseGear((await client.hget(GEARS_KEY, key)) ?? '', expired), 2);
    // Nobody renews: the sweep removes the entry.
    await sweepGears(client, expired + GEAR_LEASE_MS + 1);
    assert.equal(await client.hexists(GEARS_KEY, key), 0);
    // An operator may pin a gear by hand (no lease); garbage reads as gear 1.
    assert.equal(parseGear('4'), 4);
    assert.equal(parseGear('9|99999999999999'), 1);
    assert.equal(parseGear('x'), 1);
  });

  it('keeps the last snapshot when Redis is unreachable', async () => {
    const own = await startRedis();
    const ownClient = new Redis(own.url, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
    ownClient.on('error', () => undefined);
    await new Promise((resolve) => ownClient.once('ready', resolve));
    const board = await new Switchboard({ redis: ownClient }).start();
    await board.set({ enterMessages: false });
    await own.stop();
    await assert.rejects(board.refresh());
    assert.equal(board.get().enterMessages, false);
    board.stop();
    ownClient.disconnect();
  });

  it('the read-only check refuses sends to read-only rooms with 403 room_read_only', async () => {
    const board = await new Switchboard({ redis: client }).start();
    const check = readOnlyCheck(board);
    const message = { id: 'x', roomId: 'quiet', type: 'comment', ts: 1, user: { id: 'u', name: 'U' }, content: 'hi' } satisfies UnsequencedMessage;
    const principal = { id: 'u', name: 'U', role: 'viewer' as const, rooms: [] };
    assert.equal(check(message, principal), undefined);
    await board.set({ readOnlyRooms: ['quiet'] });
    assert.throws(() => check(message, principal), (err: unknown) => err instanceof ApiError && err.status === 403 && err.code === 'room_read_only');
    await board.set({ readOnlyRooms: ['*'] });
    assert.throws(() => check({ ...message, roomId: 'any' }, principal), ApiError);
    await board.reset();
    board.stop();
  });
});
