/**
 * REDIS_READ_URL: with a real replica (redis-server --replicaof), polls are served from the
 * replica and writes go to the primary. Counted by each server's INFO commandstats.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { moderationKeys } from '@danmaku/moderation';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { Redis } from 'ioredis';
import { commandStats, delta, poll, send } from './hot-helpers.js';

const SCRIPTS = ['evalsha', 'eval'];

describe('reads from a replica', () => {
  let primary: TestRedis;
  let replica: TestRedis;
  let system: Standalone;

  before(async () => {
    primary = await startRedis();
    replica = await startRedis({ replicaOf: primary.port });
    const probe = new Redis(replica.url);
    await waitFor('the replica to sync', async () => /master_link_status:up/.test(await probe.info('replication')));
    probe.disconnect();
    system = await startStandalone(
      // The small-room poll memory off: every poll here is a Redis read (the memory reads the replica too).
      testConfig({ redisUrl: primary.url, redisReadUrl: replica.url, bigRoomPollRate: 1_000_000, pollMemoryStreams: 0, rateUserMax: 1_000_000, rateIpMax: 1_000_000 }),
      createLogger('test', 'silent'),
    );
  });
  after(async () => {
    await system.stop();
    await replica.stop();
    await primary.stop();
  });

  it('serves polls from the replica while sends are written to the primary', async () => {
    const room = uniqueRoom('replica');
    const token = tokenFor('writer');
    let primaryBefore = await commandStats(primary.url);
    for (let i = 0; i < 20; i++) assert.equal((await send(system.url, token, room, { type: 'comment', content: `m${i}` })).status, 202);
    await waitFor('the messages on the replica', async () => (await poll(system.url, room, { types: 'comment' })).messages.length === 20);
    assert.ok(delta(primaryBefore, await commandStats(primary.url), SCRIPTS) >= 1, 'appends ran on the primary');
    // The sends' rate counts reach the primary by a script in the background (about 100 ms after
    // them): wait for it, so the polls below are all the scripts counted.
    const counted = new Redis(primary.url);
    await waitFor('the rate counts synced', async () => (await counted.get(moderationKeys.rateUser('writer'))) === '20');
    counted.disconnect();

    primaryBefore = await commandStats(primary.url);
    const replicaBefore = await commandStats(replica.url);
    const N = 100;
    for (let i = 0; i < N; i++) assert.equal((await poll(system.url, room, { types: 'comment,gift' })).messages.length, 20);
    const onReplica = delta(replicaBefore, await commandStats(replica.url), SCRIPTS);
    const onPrimary = delta(primaryBefore, await commandStats(primary.url), SCRIPTS);
    assert.ok(onReplica >= 2 * N, `the replica ran ${onReplica} read scripts for ${N} polls of 2 types`);
    assert.equal(onPrimary, 0, 'no poll read touched the primary');
  });
});
