import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '@danmaku/auth';
import { ApiError, type UnsequencedMessage } from '@danmaku/model';
import { createModeration, moderationKeys, type Moderation } from '@danmaku/moderation';
import { openStore, type RedisStore } from '@danmaku/store';
import { startRedisCluster, testConfig, uniqueRoom, waitFor, type TestRedisCluster } from '@danmaku/testkit';

/** The send checks on a Redis Cluster: rate counters spread over the shards, the room copy over sharded keys. */
let cluster: TestRedisCluster;
let store: RedisStore;
let close: () => Promise<void>;
const made: Moderation[] = [];

before(async () => {
  cluster = await startRedisCluster();
  ({ store, close } = await openStore(testConfig({ redisClusterNodes: cluster.seeds }), 'moderation-cluster-test'));
});
after(async () => {
  for (const m of made) m.stop();
  await close?.();
  await cluster?.stop();
});

function moderation(overrides: Partial<Parameters<typeof createModeration>[0]> = {}): Moderation {
  const m = createModeration({ store, rateUserMax: 10, rateIpMax: 100, rateWindowMs: 60_000, sensitiveWords: [], sensitiveMode: 'replace', wordsRefreshMs: 0, mirrorRefreshMs: 60_000, ...overrides });
  made.push(m);
  return m;
}
const viewer = (id: string): Principal => ({ id, name: id, role: 'viewer', rooms: [] });
const comment = (roomId: string, userId: string): UnsequencedMessage => ({ id: `m${Math.random()}`, roomId, type: 'comment', ts: Date.now(), user: { id: userId, name: userId }, content: 'x' });
const refused = (code: string) => (err: unknown) => err instanceof ApiError && err.code === code;

describe('send checks on a Redis Cluster', () => {
  test('counters of many users (every shard) sync in one round, and past the local share the cluster decides', async () => {
    const m = moderation({ rateSyncMs: 60_000 });
    const users = Array.from({ length: 30 }, (_, i) => `cu${i}-${uniqueRoom()}`);
    for (const user of users) for (let i = 0; i < 3; i++) await m.rateCheck(comment('r', user), viewer(user), {});
    await m.rates.sync();
    const counted = await Promise.all(users.map((user) => store.write.get(moderationKeys.rateUser(user))));
    assert.deepEqual(counted, users.map(() => '3'));
    const heavy = users[0] as string;
    for (let i = 0; i < 7; i++) await m.rateCheck(comment('r', heavy), viewer(heavy), {});
    await assert.rejects(async () => m.rateCheck(comment('r', heavy), viewer(heavy), {}), refused('rate_limited'));
    assert.equal(await store.write.get(moderationKeys.rateUser(heavy)), '10');
  });

  test('a ban, a mute and slow mode set on one process reach the copy of another', async () => {
    const a = moderation();
    const b = moderation();
    const room = uniqueRoom('cgate');
    const check = (userId: string) => b.roomCheck(comment(room, userId), viewer(userId), {});
    await waitFor('the copy to hear changes', () => b.mirror.listening);
    await check('u1');
    await a.ban(room, 'u1');
    await a.mute(room, 'u2', 60);
    await a.setSlowMode(room, 30);
    await waitFor('the changes to reach the other copy', () => b.mirror.verdict(room, 'u1')?.code === 'banned' && b.mirror.verdict(room, 'u2')?.code === 'muted' && b.mirror.slowSec(room) === 30);
    await assert.rejects(async () => check('u1'), refused('banned'));
    await assert.rejects(async () => check('u2'), refused('muted'));
    await check('u3');
    await assert.rejects(async () => check('u3'), refused('slow_mode'));
  });
});
