import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedis, waitReady, RedisStore, keys, seqOf, DELETED_CHANNEL, type Redis } from '@danmaku/store';
import { testConfig, uniqueRoom, startRedis, waitFor, type TestRedis } from '@danmaku/testkit';
import { ApiError } from '@danmaku/model';

const config = testConfig();
let redis: Redis;

function store(retention = 1000, dedupWindow = 5000): RedisStore {
  return new RedisStore({ write: redis, retention, dedupWindow, onlineTtlMs: 60_000 });
}

const entry = (id: string, text = id) => ({
  id,
  json: JSON.stringify({ id, roomId: 'x', type: 'comment', ts: 1, user: { id: 'u', name: 'U' }, content: text }),
});

before(async () => {
  redis = createRedis(config.redisUrl);
  await waitReady(redis);
});
after(async () => {
  await redis.quit();
});

describe('RedisStore append', () => {
  test('numbers messages 1..n in order and splices seq into the stored JSON', async () => {
    const room = uniqueRoom();
    const s = store();
    const r1 = await s.append(room, 'comment', [entry('a'), entry('b')]);
    const r2 = await s.append(room, 'comment', [entry('c')]);
    assert.deepEqual(r1, { newestSeq: 2, seqs: [1, 2] });
    assert.deepEqual(r2, { newestSeq: 3, seqs: [3] });
    const read = await s.readSince(room, 'comment', 0, 10);
    assert.deepEqual(read.messages.map((m) => JSON.parse(m).id), ['a', 'b', 'c']);
    assert.deepEqual(read.messages.map((m) => JSON.parse(m).seq), [1, 2, 3]);
    assert.deepEqual(read.messages.map(seqOf), [1, 2, 3]);
    assert.equal(read.cursorSeq, 3);
  });

  test('a redelivered id is dropped, within a batch and across batches', async () => {
    const room = uniqueRoom();
    const s = store();
    const r1 = await s.append(room, 'gift', [entry('a'), entry('b'), entry('a')]);
    const r2 = await s.append(room, 'gift', [entry('b'), entry('c')]);
    assert.deepEqual(r1.seqs, [1, 2, null]);
    assert.deepEqual(r2.seqs, [null, 3]);
    const read = await s.readSince(room, 'gift', null, 10);
    assert.deepEqual(read.messages.map((m) => JSON.parse(m).id), ['a', 'b', 'c']);
  });

  test('streams of one room are numbered independently', async () => {
    const room = uniqueRoom();
    const s = store();
    await s.append(room, 'comment', [entry('a')]);
    const gift = await s.append(room, 'gift', [entry('g')]);
    assert.equal(gift.newestSeq, 1);
  });

  test('keys of one stream share one hash slot', async () => {
    const room = uniqueRoom();
    const tags = [keys.messages(room, 'comment'), keys.seq(room, 'comment'), keys.ids(room, 'comment'), keys.floor(room, 'comment')].map(
      (k) => /\{([^}]*)\}/.exec(k)?.[1],
    );
    assert.equal(new Set(tags).size, 1);
  });
});

describe('RedisStore reads', () => {
  test('retention trims old messages; a cursor below the floor gets the newest window and skipped', async () => {
    const room = uniqueRoom();
    const s = store(5);
    for (let i = 1; i <= 12; i++) await s.append(room, 'comment', [entry(`m${i}`)]);
    assert.equal(await redis.zcard(keys.messages(room, 'comment')), 5);
    const stale = await s.readSince(room, 'comment', 3, 3);
    assert.equal(stale.skipped, true);
    assert.deepEqual(stale.messages.map(seqOf), [10, 11, 12]);
    assert.equal(stale.cursorSeq, 12);
    const fresh = await s.readSince(room, 'comment', 7, 10);
    assert.equal(fresh.skipped, false);
    assert.deepEqual(fresh.messages.map(seqOf), [8, 9, 10, 11, 12]);
  });

  test('limit pages through without skipping; caught-up cursor returns nothing', async () => {
    const room = uniqueRoom();
    const s = store();
    await s.append(room, 'comment', Array.from({ length: 7 }, (_, i) => entry(`p${i}`)));
    const page1 = await s.readSince(room, 'comment', 0, 3);
    const page2 = await s.readSince(room, 'comment', page1.cursorSeq, 3);
    const page3 = await s.readSince(room, 'comment', page2.cursorSeq, 3);
    const done = await s.readSince(room, 'comment', page3.cursorSeq, 3);
    assert.deepEqual([...page1.messages, ...page2.messages, ...page3.messages].map(seqOf), [1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(done.messages, []);
    assert.equal(done.cursorSeq, 7);
  });

  test('no cursor: the newest window; a cursor from the future (store reset) is flagged skipped', async () => {
    const room = uniqueRoom();
    const s = store();
    await s.append(room, 'comment', Array.from({ length: 5 }, (_, i) => entry(`n${i}`)));
    const newest = await s.readSince(room, 'comment', null, 2);
    assert.deepEqual(newest.messages.map(seqOf), [4, 5]);
    assert.equal(newest.skipped, false);
    const future = await s.readSince(room, 'comment', 99, 10);
    assert.equal(future.skipped, true);
    assert.equal(future.cursorSeq, 5);
  });

  test('readMany reads several types in one round trip', async () => {
    const room = uniqueRoom();
    const s = store();
    await s.append(room, 'comment', [entry('c1'), entry('c2')]);
    await s.append(room, 'gift', [entry('g1')]);
    const many = await s.readMany(room, [{ type: 'comment', cursorSeq: 1 }, { type: 'gift', cursorSeq: null }, { type: 'enter', cursorSeq: 0 }], 10);
    assert.deepEqual(many.get('comment')?.messages.map(seqOf), [2]);
    assert.deepEqual(many.get('gift')?.messages.map(seqOf), [1]);
    assert.deepEqual(many.get('enter')?.messages, []);
  });

  test('a deleted message leaves the window without flagging readers as skipped, and is announced', async () => {
    const room = uniqueRoom();
    const s = store(3);
    const sub = redis.duplicate();
    after(() => sub.disconnect());
    await waitReady(sub);
    const announced: string[] = [];
    await sub.subscribe(DELETED_CHANNEL);
    sub.on('message', (_channel: string, text: string) => announced.push(text));
    await s.append(room, 'comment', [entry('d1'), entry('d2'), entry('d3')]);
    assert.equal(await s.deleteMessage(room, 'comment', 'd1'), true);
    assert.equal(await s.deleteMessage(room, 'comment', 'nope'), false);
    const read = await s.readSince(room, 'comment', 0, 10);
    assert.equal(read.skipped, false);
    assert.deepEqual(read.messages.map((m) => JSON.parse(m).id), ['d2', 'd3']);
    await waitFor('the deletion announced', () => announced.length > 0);
    assert.deepEqual(JSON.parse(announced[0] ?? '{}'), { roomId: room, type: 'comment', ids: ['d1'] });
  });
});

describe('RedisStore presence and bans', () => {
  test('enter, leave, users and online, dropping viewers not seen within the TTL', async () => {
    const room = uniqueRoom();
    const s = new RedisStore({ write: redis, retention: 10, dedupWindow: 10, onlineTtlMs: 1000 });
    const t = Date.now();
    assert.equal(await s.enter(room, { id: 'u1', name: 'Ann' }, t), 1);
    assert.equal(await s.enter(room, { id: 'u2', name: 'Bob' }, t + 10), 2);
    assert.equal(await s.enter(room, { id: 'u1', name: 'Ann' }, t + 20), 2);
    const list = await s.users(room, 10, t + 30);
    assert.deepEqual(list, { online: 2, users: [{ id: 'u1', name: 'Ann' }, { id: 'u2', name: 'Bob' }] });
    assert.equal(await s.leave(room, 'u2', t + 40), 1);
    // u1 was last seen at t+20; 1.5 s later it no longer counts.
    assert.equal(await s.online(room, t + 1500), 0);
    assert.equal(await s.enter(room, { id: 'u3', name: 'Cy' }, t + 1500), 1);
  });

  test('a ban holds until it expires', async () => {
    const room = uniqueRoom();
    const s = store();
    const now = Date.now();
    await s.ban(room, 'u9', now + 1000);
    assert.equal(await s.isBanned(room, 'u9', now), true);
    assert.equal(await s.isBanned(room, 'u9', now + 2000), false);
    await s.ban(room, 'u9', Number.POSITIVE_INFINITY);
    assert.equal(await s.isBanned(room, 'u9', now + 10 ** 9), true);
    await s.unban(room, 'u9');
    assert.equal(await s.isBanned(room, 'u9', now), false);
  });
});

describe('RedisStore with Redis down', () => {
  let own: TestRedis;
  before(async () => {
    own = await startRedis();
  });

  test('fails fast with a 503 ApiError, and recovers when Redis is back', async () => {
    const client = createRedis(own.url, { commandTimeoutMs: 500 });
    after(() => client.disconnect());
    await waitReady(client);
    const s = new RedisStore({ write: client, retention: 10, dedupWindow: 10, onlineTtlMs: 1000 });
    await s.append('r', 'comment', [entry('x')]);
    const port = own.port;
    await own.stop();
    const started = Date.now();
    await assert.rejects(s.readSince('r', 'comment', 0, 10), (err: unknown) => err instanceof ApiError && err.status === 503 && err.code === 'redis_unavailable');
    assert.ok(Date.now() - started < 1000, `failed after ${Date.now() - started} ms`);
    own = await startRedis({ port });
    await waitReady(client, 10_000);
    assert.equal((await s.readSince('r', 'comment', 0, 10)).messages.length, 0);
    await own.stop();
  });
});
