/**
 * The poll memory on a Redis Cluster: the advanced signals are shard channels (SSUBSCRIBE), spread
 * over every primary; a room on any shard is kept fresh by its own, whether the advance carries
 * its messages or only its seq (then one read), and deletions reach it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { bucketOf, channels, openStore, type RedisStore } from '@danmaku/store';
import { startRedisCluster, testConfig, uniqueRoom, waitFor, type TestRedisCluster } from '@danmaku/testkit';
import { PollMemory } from '../src/cache/memory.js';

let cluster: TestRedisCluster;
let store: RedisStore;
let close: () => Promise<void>;

before(async () => {
  cluster = await startRedisCluster();
  ({ store, close } = await openStore(testConfig({ redisClusterNodes: cluster.seeds }), 'memory-cluster-test'));
});
after(async () => {
  await close?.();
  await cluster?.stop();
});

const json = (id: string) => JSON.stringify({ id, roomId: 'x', type: 'comment', ts: 1, user: { id: 'u', name: 'U' }, content: id });

/** What the processor does: append, then announce on the room's bucket channel, with or without the messages. */
async function appendAndAnnounce(roomId: string, id: string, carry: boolean): Promise<number> {
  const result = await store.append(roomId, 'comment', [{ id, json: json(id) }]);
  const seq = result.newestSeq;
  const event = { roomId, type: 'comment', seq, ...(carry ? { messages: [`{"seq":${seq},${json(id).slice(1)}`] } : {}) };
  await store.signals.publish(channels.advanced(bucketOf(roomId)), JSON.stringify([event]));
  return seq;
}

test('rooms on every shard stay fresh through sharded signals, carried or read, deletions included', async () => {
  const memory = new PollMemory({ store, signals: store.signals, maxStreams: 1000, window: 50, idleMs: 60_000, logger: createLogger('test', 'silent') });
  await memory.start();
  try {
    // Rooms whose advanced channels cover every spread bucket, so every shard.
    const rooms: string[] = [];
    const buckets = new Set<number>();
    for (let i = 0; buckets.size < channels.allAdvanced().length; i++) {
      const room = uniqueRoom(`shard${i}`);
      if (!buckets.has(bucketOf(room))) {
        buckets.add(bucketOf(room));
        rooms.push(room);
      }
    }
    const newest = async (room: string) => (await memory.read(room, [{ type: 'comment', cursorSeq: null }], 50))?.get('comment');
    for (const room of rooms) assert.deepEqual((await newest(room))?.messages, []);
    for (const [i, room] of rooms.entries()) {
      await appendAndAnnounce(room, `${room}-a`, i % 2 === 0);
      await appendAndAnnounce(room, `${room}-b`, i % 2 === 1);
    }
    for (const room of rooms) {
      await waitFor(`${room} to show both messages`, async () => (await newest(room))?.messages.length === 2, 5000);
      const answer = await newest(room);
      const stored = await store.readSince(room, 'comment', null, 50);
      assert.deepEqual(answer?.messages, stored.messages);
      assert.equal(answer?.cursorSeq, stored.cursorSeq);
    }
    const room = rooms[0] as string;
    assert.equal(await store.deleteMessage(room, 'comment', `${room}-a`), true);
    await waitFor('the deletion to reach memory', async () => (await newest(room))?.messages.length === 1, 5000);
  } finally {
    memory.stop();
  }
});
