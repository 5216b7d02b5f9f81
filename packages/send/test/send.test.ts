import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Principal } from '@danmaku/auth';
import { MemoryBus, type Batch } from '@danmaku/bus';
import { liveKey, LIVE_CHANNEL } from '@danmaku/lives';
import { ApiError, type SendCheck, type UnsequencedMessage } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import { createSendPipeline, openSend, type SendPath } from '@danmaku/send';
import { openStore, type RedisStore } from '@danmaku/store';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';

const TOPIC = 'send-test';
const viewer = (id: string): Principal => ({ id, name: `name-${id}`, role: 'viewer', rooms: [] });
const streamerOf = (roomId: string): Principal => ({ id: `s-${roomId}`, name: 'streamer', role: 'streamer', rooms: [roomId] });
const refusedWith = (status: number, code: string) => (err: unknown) => err instanceof ApiError && err.status === status && err.code === code;

/** A memory bus and what reached it, parsed. */
async function busWithLog(partitions = 4, topic = TOPIC): Promise<{ bus: MemoryBus; published: UnsequencedMessage[] }> {
  const bus = new MemoryBus({ partitions });
  const published: UnsequencedMessage[] = [];
  await bus.consume({
    topic,
    groupId: 'log',
    handle: async (batch: Batch) => {
      for (const r of batch.records) published.push(JSON.parse(r.value) as UnsequencedMessage);
    },
  });
  return { bus, published };
}

describe('the send pipeline', () => {
  test('runs its checks in order, each seeing what the one before returned; a refusal publishes nothing', async () => {
    const { bus, published } = await busWithLog();
    const order: string[] = [];
    const upper: SendCheck = (m) => {
      order.push('upper');
      return { ...m, content: m.content?.toUpperCase() };
    };
    const refuseBad: SendCheck = (m) => {
      order.push('refuse');
      if (m.content === 'BAD') throw new ApiError(403, 'refused', 'no');
    };
    const tag: SendCheck = async (m) => {
      order.push('tag');
      return { ...m, content: `${m.content}!` };
    };
    const pipeline = createSendPipeline({ bus, topic: TOPIC, checks: [upper, refuseBad, tag], systemChecks: [] });
    const roomId = uniqueRoom('order');
    const accepted = await pipeline.accept(roomId, { type: 'comment', content: 'hello' }, viewer('a'));
    assert.deepEqual(order, ['upper', 'refuse', 'tag']);
    await assert.rejects(pipeline.accept(roomId, { type: 'comment', content: 'bad' }, viewer('a')), refusedWith(403, 'refused'));
    assert.deepEqual(order, ['upper', 'refuse', 'tag', 'upper', 'refuse'], 'no check after a refusal');
    await waitFor('the accepted message on the bus', () => published.length === 1);
    assert.equal(published[0]?.id, accepted.id);
    assert.equal(published[0]?.content, 'HELLO!');
    // Shape errors come before any check.
    await assert.rejects(pipeline.accept(roomId, { type: 'gift' }, viewer('a')), refusedWith(400, 'invalid_request'));
    assert.equal(order.length, 5);
    await bus.close();
  });

  test('a system message passes the system checks only; an enter message passes none', async () => {
    const { bus, published } = await busWithLog();
    const viewerOnly: SendCheck = () => {
      throw new ApiError(429, 'rate_limited', 'viewer check ran');
    };
    const trim: SendCheck = (m) => ({ ...m, content: m.content?.trim() });
    const pipeline = createSendPipeline({ bus, topic: TOPIC, checks: [viewerOnly], systemChecks: [trim] });
    const roomId = uniqueRoom('system');
    const message = await pipeline.system(roomId, '  pinned  ', streamerOf(roomId));
    assert.equal(message.type, 'system');
    assert.equal(message.content, 'pinned');
    assert.deepEqual(message.user, { id: `s-${roomId}`, name: 'streamer' });
    await waitFor('published', () => published.length === 1);
    assert.deepEqual(published[0], message);
    // "X joined" passes no check at all (entering was checked) and is not stamped.
    const entered = await pipeline.enter(roomId, viewer('newcomer'));
    await waitFor('the enter message', () => published.length === 2);
    assert.deepEqual(published[1], entered);
    assert.equal(entered.type, 'enter');
    assert.deepEqual(entered.user, { id: 'newcomer', name: 'name-newcomer' });
    await bus.close();
  });

  test('a drain refuses new sends with 503 draining and waits for the ones taken in, which are published', async () => {
    const { bus, published } = await busWithLog();
    let release = (): void => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    // A check that holds the first send: it is taken in (past the door) when the drain starts.
    const hold: SendCheck = async (m) => {
      if (m.content === 'held') await gate;
    };
    const pipeline = createSendPipeline({ bus, topic: TOPIC, checks: [hold], systemChecks: [] });
    const roomId = uniqueRoom('drain');
    const held = pipeline.accept(roomId, { type: 'comment', content: 'held' }, viewer('a'));
    assert.equal(pipeline.taken(), 1);
    let drained = false;
    const draining = pipeline.drain().then(() => (drained = true));
    const refused = (err: unknown) => refusedWith(503, 'draining')(err) && (err as ApiError).retryAfter === 1;
    await assert.rejects(pipeline.accept(roomId, { type: 'comment', content: 'late' }, viewer('a')), refused);
    await assert.rejects(pipeline.system(roomId, 'notice', streamerOf(roomId)), refused);
    await assert.rejects(pipeline.enter(roomId, viewer('b')), refused);
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(drained, false, 'the drain waits for the send taken in');
    release();
    const accepted = await held;
    await draining;
    await waitFor('the held send on the bus', () => published.length === 1);
    assert.equal(published[0]?.id, accepted.id);
    await pipeline.drain();
    await bus.close();
  });
});

describe('openSend: the checks every surface shares, from Redis and the bus only', () => {
  // MySQL and the replay Redis point nowhere: sending must not need them.
  const config = testConfig({ mysqlUrl: 'mysql://nobody:nothing@127.0.0.1:1/none', replayRedisUrl: 'redis://127.0.0.1:1', rateUserMax: 3, rateWindowMs: 60_000 });
  const name = uniqueRoom('sendpath');
  let store: RedisStore;
  let closeStore: () => Promise<void>;
  let bus: MemoryBus;
  let published: UnsequencedMessage[];
  let path: SendPath;

  before(async () => {
    ({ store, close: closeStore } = await openStore(config, 'test'));
    ({ bus, published } = await busWithLog(config.partitions, config.topic));
    path = await openSend(config, { store, bus, logger: createLogger('test', 'silent'), name });
  });
  after(async () => {
    await path.close();
    await bus.close();
    await closeStore();
  });

  test('stamps sends during a live from Redis, a live started by another process included', async () => {
    const roomId = uniqueRoom('stamp');
    const before = await path.pipeline.accept(roomId, { type: 'comment', content: 'before' }, viewer(uniqueRoom('v1')));
    // The room is now cached as not live; another process starts a live and announces it.
    const startedAt = Date.now() - 5000;
    await store.write.hset(liveKey(roomId), 'liveId', 'lvtest', 'startedAt', String(startedAt));
    await store.write.publish(LIVE_CHANNEL, roomId);
    await waitFor('the live seen', async () => (await path.lives.cached(roomId))?.liveId === 'lvtest');
    const during = await path.pipeline.accept(roomId, { type: 'comment', content: 'during' }, viewer(uniqueRoom('v2')));
    const notice = await path.pipeline.system(roomId, 'welcome', streamerOf(roomId));
    await waitFor('published', () => published.filter((m) => m.roomId === roomId).length === 3);
    const byId = new Map(published.map((m) => [m.id, m]));
    assert.equal(byId.get(before.id)?.liveId, undefined);
    assert.equal(byId.get(during.id)?.liveId, 'lvtest');
    assert.equal(byId.get(during.id)?.offsetMs, during.ts - startedAt);
    assert.equal(byId.get(notice.id)?.liveId, 'lvtest', 'system messages are stamped too');
    await store.write.del(liveKey(roomId));
  });

  test('read-only rooms and rate limits refuse viewers; a streamer notice is not rate limited but keeps the text rules', async () => {
    const roomId = uniqueRoom('gate');
    await path.switches.set({ readOnlyRooms: [roomId] });
    try {
      await assert.rejects(path.pipeline.accept(roomId, { type: 'comment', content: 'x' }, viewer(uniqueRoom('v'))), refusedWith(403, 'room_read_only'));
    } finally {
      await path.switches.set({ readOnlyRooms: [] });
    }
    const user = viewer(uniqueRoom('fast'));
    for (let i = 0; i < 3; i++) await path.pipeline.accept(roomId, { type: 'comment', content: `m${i}` }, user);
    await assert.rejects(path.pipeline.accept(roomId, { type: 'comment', content: 'one too many' }, user), refusedWith(429, 'rate_limited'));
    const streamer = streamerOf(roomId);
    for (let i = 0; i < 5; i++) await path.pipeline.system(roomId, `notice ${i}`, streamer);
    const cleaned = await path.pipeline.system(roomId, 'two\u200b  words', streamer);
    assert.equal(cleaned.content, 'two words');
    await assert.rejects(path.pipeline.system(roomId, 'x'.repeat(500), streamer), refusedWith(400, 'content_too_long'));
  });

  test('opens no MySQL pool and no replay connection', async () => {
    const clients = String(await store.write.client('LIST'));
    const names = [...clients.matchAll(/ name=(\S*)/g)].map((m) => m[1] ?? '');
    assert.ok(names.includes(`${name}-live-sub`), `the live subscriber is there (${names.join(',')})`);
    assert.ok(!names.some((n) => n.startsWith(`${name}-replay`)), 'no replay connection');
  });
});
