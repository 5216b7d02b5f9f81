import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveStates, liveKey } from '@danmaku/lives';
import type { UnsequencedMessage } from '@danmaku/model';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { startRedis, testConfig, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';

const sender = { id: 'u', name: 'u', role: 'viewer', rooms: [] };
const comment = (roomId: string, ts: number): UnsequencedMessage => ({ id: `m${ts}`, roomId, type: 'comment', ts, user: { id: 'u', name: 'u' }, content: 'hi' });

describe('live states', () => {
  let redis: Redis;
  before(async () => {
    redis = createRedis(testConfig().redisUrl);
    await waitReady(redis);
  });
  after(async () => {
    await redis.quit();
  });

  test("a live event drops another process's cached state long before it would expire", async () => {
    const roomId = uniqueRoom('event');
    // A cache that would trust "not live" for a minute: only the event can make it look again.
    const name = uniqueRoom('here');
    const here = new LiveStates({ redis, cacheMs: 60_000, subscribe: true, name });
    const there = new LiveStates({ redis, cacheMs: 60_000 });
    try {
      // Other processes may listen on the shared Redis too: wait for this one's subscription.
      await waitFor('subscribed', async () => String(await redis.client('LIST')).split('\n').some((l) => l.includes(`name=${name}-live-sub `) && l.includes(' sub=1 ')));
      assert.equal(await here.cached(roomId), null);
      await redis.hset(liveKey(roomId), 'liveId', 'lv1', 'startedAt', '1000');
      assert.equal(await here.cached(roomId), null, 'cached until told');
      await there.announce(roomId);
      await waitFor('the event', async () => (await here.cached(roomId))?.liveId === 'lv1');
      const stamped = await here.stamp(comment(roomId, 1500), sender);
      assert.deepEqual(stamped && { liveId: stamped.liveId, offsetMs: stamped.offsetMs }, { liveId: 'lv1', offsetMs: 500 });
      assert.equal((await here.stamp(comment(roomId, 900), sender))?.offsetMs, 0, 'never negative');
    } finally {
      here.close();
      there.close();
      await redis.del(liveKey(roomId));
    }
  });

  describe('with Redis away', () => {
    let own: TestRedis;
    let client: Redis;
    before(async () => {
      own = await startRedis();
      client = createRedis(own.url, { commandTimeoutMs: 200 });
      await waitReady(client);
    });
    after(async () => {
      client.disconnect();
      await own.stop().catch(() => undefined);
    });

    test('stamps from the last state it saw, and sends unstamped rather than refusing when it saw none', async (t) => {
      const known = uniqueRoom('known');
      const unknown = uniqueRoom('unknown');
      const states = new LiveStates({ redis: client, cacheMs: 1 });
      await client.hset(liveKey(known), 'liveId', 'lv2', 'startedAt', '100');
      assert.equal((await states.cached(known))?.liveId, 'lv2');
      await own.stop();
      // Past the 1 ms cache by the mocked clock: the next stamp must ask the stopped Redis.
      t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
      t.mock.timers.tick(5);
      assert.equal((await states.stamp(comment(known, 300), sender))?.liveId, 'lv2');
      assert.equal(await states.stamp(comment(unknown, 300), sender), undefined);
    });
  });
});
