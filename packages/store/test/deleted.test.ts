import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedis, waitReady, RedisStore, DELETED_CHANNEL, parseMessagesDeleted, type Redis } from '@danmaku/store';
import { testConfig, uniqueRoom } from '@danmaku/testkit';

let redis: Redis;

before(async () => {
  redis = createRedis(testConfig().redisUrl);
  await waitReady(redis);
});
after(async () => {
  await redis.quit();
});

test('a deletion the store publishes reads back as the same event', async () => {
  const room = uniqueRoom();
  const store = new RedisStore({ write: redis, retention: 10, dedupWindow: 10, onlineTtlMs: 60_000 });
  const json = JSON.stringify({ id: 'gone', roomId: room, type: 'gift', ts: 1, user: { id: 'u', name: 'U' }, content: 'x' });
  await store.append(room, 'gift', [{ id: 'gone', json }]);
  let heard: (text: string) => void = () => undefined;
  const published = new Promise<string>((resolve) => (heard = resolve));
  const subscription = await store.signals.subscribe([DELETED_CHANNEL], (channel, text) => {
    if (channel === DELETED_CHANNEL && text.includes(room)) heard(text);
  });
  after(() => subscription.close());
  assert.equal(await store.deleteMessage(room, 'gift', 'gone'), true);
  assert.deepEqual(parseMessagesDeleted(await published), { roomId: room, type: 'gift', ids: ['gone'] });
});

test('anything but a well-formed deletion is refused, not half-read', () => {
  const ok = { roomId: 'r1', type: 'comment', ids: ['a', 'b'] };
  assert.deepEqual(parseMessagesDeleted(JSON.stringify(ok)), ok);
  assert.deepEqual(parseMessagesDeleted(JSON.stringify({ ...ok, ids: [] })), { ...ok, ids: [] });
  // Fields the subscribers do not read are dropped, so nothing else rides along.
  assert.deepEqual(parseMessagesDeleted(JSON.stringify({ ...ok, extra: 1 })), ok);
  for (const bad of [
    'not json',
    'null',
    '"text"',
    '[]',
    JSON.stringify({ ...ok, roomId: 7 }),
    JSON.stringify({ type: 'comment', ids: ['a'] }),
    JSON.stringify({ ...ok, type: 'poll' }),
    JSON.stringify({ ...ok, type: undefined }),
    JSON.stringify({ ...ok, ids: 'a' }),
    JSON.stringify({ ...ok, ids: ['a', 2] }),
    JSON.stringify({ ...ok, ids: [null] }),
  ]) {
    assert.equal(parseMessagesDeleted(bad), null, bad);
  }
});
