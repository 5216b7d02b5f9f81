import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';

const config = testConfig();
let redis: Redis;
let admin: Redis;

/** Counts the syscall-level writes of the client's current socket (net.Socket's _write and _writev). */
function countWrites(client: Redis): () => number {
  const stream = (client as unknown as { stream: { _write: (...a: unknown[]) => void; _writev: (...a: unknown[]) => void } }).stream;
  let writes = 0;
  const write = stream._write.bind(stream);
  const writev = stream._writev.bind(stream);
  stream._write = (...a: unknown[]) => {
    writes++;
    write(...a);
  };
  stream._writev = (...a: unknown[]) => {
    writes++;
    writev(...a);
  };
  return () => writes;
}

before(async () => {
  redis = createRedis(config.redisUrl, { name: 'coalesce-test' });
  admin = createRedis(config.redisUrl);
  await Promise.all([waitReady(redis), waitReady(admin)]);
});
after(async () => {
  await Promise.all([redis.quit(), admin.quit()]);
});

test('commands issued in one event-loop turn leave in one write, in order, each with its own reply', async () => {
  const key = `coalesce:${uniqueRoom()}`;
  const writes = countWrites(redis);
  const replies = await Promise.all(Array.from({ length: 200 }, () => redis.incr(key)));
  assert.deepEqual(replies, Array.from({ length: 200 }, (_, i) => i + 1));
  assert.equal(writes(), 1);
  // Commands of later turns are not held back by earlier ones.
  assert.equal(await redis.incr(key), 201);
  assert.equal(await redis.get(key), '201');
  assert.equal(writes(), 3);
});

test('still coalesces, and answers, on the socket of a reconnection', async () => {
  const key = `coalesce:${uniqueRoom()}`;
  const before = (redis as unknown as { stream: object }).stream;
  await admin.client('KILL', 'SKIPME', 'yes', 'TYPE', 'normal', 'USER', 'default');
  await waitFor('a new connection', () => redis.status === 'ready' && (redis as unknown as { stream: object }).stream !== before, 10_000, 20);
  const writes = countWrites(redis);
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => redis.set(`${key}:${i}`, String(i)).then(() => redis.get(`${key}:${i}`))));
  assert.deepEqual(replies, Array.from({ length: 50 }, (_, i) => String(i)));
  // The 50 SETs in one write, then the 50 GETs (issued as each SET's reply came) in a few more.
  assert.ok(writes() <= 10, `${writes()} writes for 100 commands`);
});
