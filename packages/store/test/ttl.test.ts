import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MESSAGE_TYPES } from '@danmaku/protocol';
import { RedisStore, createRedis, keys, openStore, waitReady, type Redis } from '@danmaku/store';
import { startRedis, startRedisCluster, testConfig, uniqueRoom, waitFor, type TestRedis, type TestRedisCluster } from '@danmaku/testkit';

/**
 * A room's live state expires DANMAKU_ROOM_TTL_S after its last write. Each Redis here is private
 * (the shared one holds other tests' keys), so key counts and used_memory are this test's alone.
 */
const TTL_S = 2;
const ROOMS = 10_000;
/** The memory test's TTL: long enough that no room expires before all 10,000 are written, on a busy machine too. */
const MEMORY_TTL_S = 8;

const entry = (id: string) => ({ id, json: JSON.stringify({ id, roomId: 'x', type: 'comment', ts: 1, user: { id: 'u', name: 'U' }, content: `hello ${id}` }) });

interface Target {
  name: string;
  store: RedisStore;
  /** Asks about single keys (PTTL, EXISTS): the store's own client, which finds a key's node. */
  client: Redis;
  /** One connection per primary: where keys and memory live. */
  primaries: Redis[];
  close(): Promise<void>;
}

async function sum(primaries: Redis[], read: (r: Redis) => Promise<number>): Promise<number> {
  return (await Promise.all(primaries.map(read))).reduce((a, b) => a + b, 0);
}

/**
 * used_memory without the replication buffers: on a primary with a replica, Redis grows its
 * replication backlog (up to repl-backlog-size, 1 MB) with the first writes and keeps it, which is
 * not room state.
 */
const usedMemory = async (r: Redis): Promise<number> => {
  const info = await r.info('memory');
  const field = (name: string): number => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1] ?? 0);
  return field('used_memory') - field('mem_replication_backlog') - field('mem_clients_slaves');
};
const dbsize = async (r: Redis): Promise<number> => r.dbsize();

/** Every key of a stream has a TTL of at most TTL_S, once written. */
async function assertStreamTtls(target: Target, roomId: string): Promise<void> {
  const streamKeys = [keys.messages(roomId, 'comment'), keys.seq(roomId, 'comment'), keys.ids(roomId, 'comment')];
  for (const key of streamKeys) {
    const ttl = await target.client.pttl(key);
    assert.ok(ttl > 0 && ttl <= TTL_S * 1000, `${key}: pttl ${ttl}`);
  }
}

function suite(open: () => Promise<Target>): void {
  let target: Target;
  before(async () => {
    target = await open();
  });
  after(async () => {
    await target?.close();
  });

  test('a write gives every key of the stream a TTL, refreshed by the next write; the floor too once retention trims', async () => {
    const room = uniqueRoom('ttl');
    await target.store.append(room, 'comment', [entry('a')]);
    await assertStreamTtls(target, room);
    // Retention (10 in this store) trims: the floor key appears, with a TTL.
    await target.store.append(room, 'comment', Array.from({ length: 12 }, (_, i) => entry(`b${i}`)));
    const floorTtl = await target.client.pttl(keys.floor(room, 'comment'));
    assert.ok(floorTtl > 0 && floorTtl <= TTL_S * 1000, `floor pttl ${floorTtl}`);
    // A later write pushes the expiry out again: the key is made to look a second older first
    // (its TTL cut by hand) rather than waiting a second for it.
    await target.client.pexpire(keys.seq(room, 'comment'), TTL_S * 1000 - 1000);
    await target.store.append(room, 'comment', [entry('c')]);
    const refreshed = await target.client.pttl(keys.seq(room, 'comment'));
    assert.ok(refreshed > TTL_S * 1000 - 500, `refreshed pttl ${refreshed}`);
    // Presence keeps its own expiry: one online TTL after the last enter.
    await target.store.enter(room, { id: 'u1', name: 'One' });
    const presenceTtl = await target.client.pttl(keys.users(room));
    assert.ok(presenceTtl > 0 && presenceTtl <= 1000, `presence pttl ${presenceTtl}`);
  });

  test('after the TTL the keys are gone and a read of the room answers an empty window, no error', async () => {
    const room = uniqueRoom('gone');
    for (const type of MESSAGE_TYPES) await target.store.append(room, type, [entry(`${type}-1`), entry(`${type}-2`)]);
    const before = await target.store.readSince(room, 'comment', null, 10);
    assert.equal(before.messages.length, 2);
    const streamKeys = MESSAGE_TYPES.flatMap((t) => [keys.messages(room, t), keys.seq(room, t), keys.ids(room, t)]);
    const existing = async (): Promise<number> => (await Promise.all(streamKeys.map((k) => target.client.exists(k)))).reduce((a, b) => a + b, 0);
    assert.equal(await existing(), streamKeys.length);
    await waitFor('the room expired', async () => (await existing()) === 0, TTL_S * 1000 + 5000);
    // A viewer holding a cursor from before (seq 2), and one with none.
    const stale = await target.store.readSince(room, 'comment', 2, 10);
    assert.deepEqual({ messages: stale.messages, newestSeq: stale.newestSeq }, { messages: [], newestSeq: 0 });
    const fresh = await target.store.readMany(room, MESSAGE_TYPES.map((type) => ({ type, cursorSeq: null })), 10);
    for (const type of MESSAGE_TYPES) assert.deepEqual(fresh.get(type)?.messages, []);
    // The room lives again from seq 1; the stale cursor is told it skipped and gets the new window.
    await target.store.append(room, 'comment', [entry('again')]);
    const again = await target.store.readSince(room, 'comment', 2, 10);
    assert.equal(again.skipped, true);
    assert.deepEqual(again.messages.map((m) => JSON.parse(m).id), ['again']);
  });

  test(`${ROOMS.toLocaleString('en')} rooms written once leave Redis memory at its baseline after the TTL`, async () => {
    // Settle first: earlier tests' keys gone, so the baseline holds nothing of ours.
    await waitFor('no keys left', async () => (await sum(target.primaries, dbsize)) === 0, TTL_S * 1000 + 5000);
    const baseline = await sum(target.primaries, usedMemory);
    const store = new RedisStore({ write: target.store.write, retention: 10, dedupWindow: 100, onlineTtlMs: 1000, roomTtlS: MEMORY_TTL_S });
    const prefix = uniqueRoom('mem');
    const writeStart = Date.now();
    for (let i = 0; i < ROOMS; i += 500) {
      await Promise.all(Array.from({ length: 500 }, (_, k) => store.append(`${prefix}-${i + k}`, 'comment', [entry(`m${i + k}`)])));
    }
    const written = await sum(target.primaries, usedMemory);
    const keysWritten = await sum(target.primaries, dbsize);
    const writeMs = Date.now() - writeStart;
    assert.ok(writeMs < (MEMORY_TTL_S - 1) * 1000, `the writes took ${writeMs} ms: rooms expired before all were written, the count below means nothing`);
    assert.equal(keysWritten, ROOMS * 3, 'z, seq and ids of each room');
    const perRoom = (written - baseline) / ROOMS;
    console.log(`# ${target.name}: ${ROOMS} rooms written once: +${(written - baseline).toLocaleString('en')} bytes, ${Math.round(perRoom)} bytes per room (one comment of ~110 bytes)`);
    assert.ok(perRoom > 100, `a room costs memory: ${perRoom}`);
    const t0 = Date.now();
    await waitFor('every room expired', async () => (await sum(target.primaries, dbsize)) === 0, MEMORY_TTL_S * 1000 + 20_000, 200);
    // Redis shrinks its emptied hash tables in its cron (10 times a second): allow it a moment.
    const settled = await waitFor(
      'memory back at the baseline',
      async () => {
        const now = await sum(target.primaries, usedMemory);
        return now - baseline < 64 * 1024 * target.primaries.length ? now : null;
      },
      10_000,
      200,
    );
    console.log(`# ${target.name}: ${ROOMS} rooms written in ${writeMs} ms, all expired ${Date.now() - t0} ms after the last write (TTL ${MEMORY_TTL_S} s); used_memory ${settled.toLocaleString('en')} vs baseline ${baseline.toLocaleString('en')} (${(settled - baseline).toLocaleString('en')} bytes)`);
  });
}

describe('room TTL on one Redis', () => {
  let redis: TestRedis;
  suite(async () => {
    redis = await startRedis();
    const config = testConfig({ redisUrl: redis.url, roomTtlS: TTL_S, retention: 10, onlineTtlMs: 1000 });
    const { store, close } = await openStore(config, 'ttl-test');
    const probe = createRedis(redis.url);
    await waitReady(probe);
    return {
      name: 'one Redis',
      store,
      client: store.write,
      primaries: [probe],
      async close() {
        probe.disconnect();
        await close();
        await redis.stop();
      },
    };
  });
});

describe('room TTL on a Redis Cluster', () => {
  let cluster: TestRedisCluster;
  suite(async () => {
    cluster = await startRedisCluster();
    const config = testConfig({ redisClusterNodes: cluster.seeds, roomTtlS: TTL_S, retention: 10, onlineTtlMs: 1000 });
    const { store, close } = await openStore(config, 'ttl-cluster-test');
    const probes = (await cluster.primaries()).map((p) => createRedis(`redis://127.0.0.1:${p.port}`));
    await Promise.all(probes.map((p) => waitReady(p)));
    return {
      name: 'Redis Cluster (3 primaries)',
      store,
      client: store.write,
      primaries: probes,
      async close() {
        for (const p of probes) p.disconnect();
        await close();
        await cluster.stop();
      },
    };
  });
});
