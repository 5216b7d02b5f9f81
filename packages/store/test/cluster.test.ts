import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { MESSAGE_TYPES } from '@danmaku/protocol';
import {
  bucketOf,
  channels,
  keys,
  openStore,
  roomKeys,
  slotOf,
  SPREAD_TAGS,
  type RedisStore,
} from '@danmaku/store';
import { startRedisCluster, testConfig, uniqueRoom, waitFor, type TestRedisCluster } from '@danmaku/testkit';

let cluster: TestRedisCluster;
let store: RedisStore;
let close: () => Promise<void>;

const entry = (id: string) => ({ id, json: JSON.stringify({ id, roomId: 'x', type: 'comment', ts: 1, user: { id: 'u', name: 'U' }, content: id }) });

function primaryOfSlot(primaries: { port: number; slots: [number, number][] }[], slot: number): number {
  const owner = primaries.find((p) => p.slots.some(([a, b]) => slot >= a && slot <= b));
  assert.ok(owner, `slot ${slot} has a primary`);
  return owner.port;
}

before(async () => {
  cluster = await startRedisCluster();
  ({ store, close } = await openStore(testConfig({ redisClusterNodes: cluster.seeds }), 'cluster-test'));
});
after(async () => {
  await close?.();
  await cluster?.stop();
});

describe('store on a Redis Cluster', () => {
  test('slotOf agrees with CLUSTER KEYSLOT', () => {
    const port = String(cluster.nodes[0]?.port);
    for (const key of ['foo', keys.messages('room-1', 'comment'), roomKeys.likes('ç-房间'), channels.node('n1'), 'a{}b{c}', '{}x']) {
      const answer = Number(execFileSync('redis-cli', ['-p', port, 'cluster', 'keyslot', key]).toString().trim());
      assert.equal(slotOf(key), answer, key);
    }
  });

  test('append, readSince and readMany across the streams of a room (different slots, no CROSSSLOT)', async () => {
    const room = uniqueRoom();
    const slots = new Set(MESSAGE_TYPES.map((t) => slotOf(keys.seq(room, t))));
    assert.ok(slots.size > 1, 'the streams of a room sit in several slots');
    for (const type of MESSAGE_TYPES) await store.append(room, type, [entry(`${type}-1`), entry(`${type}-2`)]);
    const many = await store.readMany(room, MESSAGE_TYPES.map((type) => ({ type, cursorSeq: 0 })), 10);
    for (const type of MESSAGE_TYPES) assert.deepEqual(many.get(type)?.messages.map((m) => JSON.parse(m).id), [`${type}-1`, `${type}-2`]);
    assert.deepEqual(await store.newestSeqs(room, MESSAGE_TYPES), MESSAGE_TYPES.map(() => 2));
    // Presence and the room's keys live together under {r:ROOM}.
    await store.enter(room, { id: 'u1', name: 'One' });
    assert.deepEqual((await store.users(room, 10)).users, [{ id: 'u1', name: 'One' }]);
  });

  test('the keys of 1,000 rooms spread over all three primaries', async () => {
    const primaries = await cluster.primaries();
    assert.equal(primaries.length, 3);
    const perPrimary = new Map<number, number>(primaries.map((p) => [p.port, 0]));
    for (let i = 0; i < 1000; i++) {
      for (const type of MESSAGE_TYPES) {
        const port = primaryOfSlot(primaries, slotOf(keys.messages(`room-${i}`, type)));
        perPrimary.set(port, (perPrimary.get(port) ?? 0) + 1);
      }
    }
    // Write the streams of 1,000 real rooms and count keys per primary with DBSIZE.
    const before = new Map(primaries.map((p) => [p.port, Number(execFileSync('redis-cli', ['-p', String(p.port), 'dbsize']).toString())]));
    const prefix = uniqueRoom('spread');
    for (let i = 0; i < 1000; i++) await store.append(`${prefix}-${i}`, 'comment', [entry(`m${i}`)]);
    const written = primaries.map((p) => Number(execFileSync('redis-cli', ['-p', String(p.port), 'dbsize']).toString()) - (before.get(p.port) ?? 0));
    console.log(`# stream keys of 1,000 rooms x 5 types per primary: ${JSON.stringify(Object.fromEntries(perPrimary))}`);
    console.log(`# keys written by 1,000 real appends per primary (z, seq, ids per stream): ${JSON.stringify(Object.fromEntries(primaries.map((p, i) => [p.port, written[i]])))}`);
    for (const count of perPrimary.values()) assert.ok(count > 1200 && count < 2100, `balanced: ${count} of 5000`);
    for (const count of written) assert.ok(count > 800, `each primary holds keys: ${count}`);
  });

  test('sharded pub/sub: advanced channels spread over every shard and deliver', async () => {
    const primaries = await cluster.primaries();
    const perShard = new Map<number, number>(primaries.map((p) => [p.port, 0]));
    for (const tag of SPREAD_TAGS) {
      const port = primaryOfSlot(primaries, slotOf(`{${tag}}`));
      perShard.set(port, (perShard.get(port) ?? 0) + 1);
    }
    console.log(`# ${SPREAD_TAGS.length} advanced channels per shard: ${JSON.stringify(Object.fromEntries(perShard))}`);
    for (const count of perShard.values()) assert.equal(count, SPREAD_TAGS.length / 3);
    const rooms = Array.from({ length: 300 }, (_, i) => `r${i}`);
    const roomsPerShard = new Map<number, number>();
    for (const r of rooms) {
      const port = primaryOfSlot(primaries, slotOf(channels.advanced(bucketOf(r))));
      roomsPerShard.set(port, (roomsPerShard.get(port) ?? 0) + 1);
    }
    console.log(`# 300 rooms' advanced channel per shard: ${JSON.stringify(Object.fromEntries(roomsPerShard))}`);
    for (const count of roomsPerShard.values()) assert.ok(count > 60, `rooms spread: ${count}`);

    const got = new Map<string, string[]>();
    const sub = await store.signals.subscribe(channels.allAdvanced(), (channel, message) => {
      const list = got.get(channel) ?? [];
      list.push(message);
      got.set(channel, list);
    });
    try {
      await store.signals.publishMany(channels.allAdvanced().map((c, i) => [c, `m${i}`] as const));
      await waitFor('a message on every advanced channel', () => got.size === SPREAD_TAGS.length, 5000);
      channels.allAdvanced().forEach((c, i) => assert.deepEqual(got.get(c), [`m${i}`]));
      // SPUBLISH: every message reached its shard's channel only, none was copied to other nodes.
      const shardNumsub = primaries.map((p) => execFileSync('redis-cli', ['-p', String(p.port), 'pubsub', 'shardchannels', 'dm:*']).toString().trim().split('\n').filter(Boolean).length);
      console.log(`# shard channels subscribed per primary: ${JSON.stringify(shardNumsub)}`);
      for (const n of shardNumsub) assert.equal(n, SPREAD_TAGS.length / 3);
    } finally {
      await sub.close();
    }
  });

  test('DANMAKU_REDIS_WAIT_REPLICAS: appends wait for a replica; the cost is measured', async () => {
    const { store: waiting, close: closeWaiting } = await openStore(testConfig({ redisClusterNodes: cluster.seeds, redisWaitReplicas: 1, redisWaitTimeoutMs: 500 }), 'cluster-wait');
    try {
      const measure = async (s: RedisStore, n: number): Promise<number> => {
        const room = uniqueRoom('wait');
        const t0 = process.hrtime.bigint();
        for (let i = 0; i < n; i++) await s.append(room, 'comment', [entry(`w${i}`)]);
        return Number(process.hrtime.bigint() - t0) / 1e6 / n;
      };
      await measure(store, 50);
      await measure(waiting, 50);
      const plain = await measure(store, 300);
      const waited = await measure(waiting, 300);
      console.log(`# append latency, 300 serial appends: no WAIT ${plain.toFixed(3)} ms, WAIT 1 replica ${waited.toFixed(3)} ms (+${(waited - plain).toFixed(3)} ms)`);
      assert.ok(waited > 0 && plain > 0);
      // With too many replicas asked for, the append fails (503) instead of pretending.
      const { store: impossible, close: closeImpossible } = await openStore(
        testConfig({ redisClusterNodes: cluster.seeds, redisWaitReplicas: 2, redisWaitTimeoutMs: 50 }),
        'cluster-wait-2',
      );
      try {
        await assert.rejects(impossible.append(uniqueRoom('wait'), 'comment', [entry('x')]), (err: Error & { status?: number }) => err.status === 503);
      } finally {
        await closeImpossible();
      }
    } finally {
      await closeWaiting();
    }
  });
});
