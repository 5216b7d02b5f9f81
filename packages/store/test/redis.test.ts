import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createRedis, defineScripts, registerScripts, waitReady, type Redis } from '@danmaku/store';
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
  // Only this client's connection: the Redis may be shared with other runs.
  await admin.client('KILL', 'ID', String(await redis.client('ID')));
  await waitFor('a new connection', () => redis.status === 'ready' && (redis as unknown as { stream: object }).stream !== before, 10_000, 20);
  const writes = countWrites(redis);
  const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => redis.set(`${key}:${i}`, String(i)).then(() => redis.get(`${key}:${i}`))));
  assert.deepEqual(replies, Array.from({ length: 50 }, (_, i) => String(i)));
  // The 50 SETs in one write, then the 50 GETs (issued as each SET's reply came) in a few more.
  assert.ok(writes() <= 10, `${writes()} writes for 100 commands`);
});

// Registered as a module's top level does it: before any client of this file is made.
const ECHO = registerScripts({ dmTestEcho: { keys: 1, lua: 'return {KEYS[1], ARGV[1]}' } });
type EchoRedis = Redis & { dmTestEcho(key: string, value: string): Promise<string[]> };

test('registered scripts are on a client from its start and leave in the same write as the turn\'s other commands', async () => {
  const key = `coalesce:${uniqueRoom()}`;
  const client = createRedis(config.redisUrl);
  try {
    await waitReady(client);
    assert.equal(typeof (client as unknown as Record<string, unknown>).dmTestEcho, 'function');
    const scripted = defineScripts<EchoRedis>(client, ECHO);
    const writes = countWrites(client);
    const [first, echoed, second] = await Promise.all([client.incr(key), scripted.dmTestEcho(key, 'v'), client.incr(key)]);
    assert.deepEqual([first, echoed, second], [1, [key, 'v'], 2]);
    assert.equal(writes(), 1);
  } finally {
    await client.quit();
  }
});

test('a script defined on a client with commands waiting in an auto-pipeline is refused (ioredis would hang the client), and defined once none wait', async () => {
  const key = `coalesce:${uniqueRoom()}`;
  const client = createRedis(config.redisUrl);
  try {
    await waitReady(client);
    const late = { dmTestLate: { keys: 1, lua: 'return redis.call("INCR", KEYS[1])' } };
    const waiting = client.incr(key);
    assert.equal(client.autoPipelineQueueSize, 1);
    assert.throws(() => defineScripts(client, late), /registerScripts/);
    assert.equal(await waiting, 1);
    assert.equal(client.autoPipelineQueueSize, 0);
    const scripted = defineScripts<Redis & { dmTestLate(key: string): Promise<number> }>(client, late);
    const [a, b] = await Promise.all([scripted.dmTestLate(key), client.incr(key)]);
    assert.deepEqual([a, b], [2, 3]);
  } finally {
    await client.quit();
  }
});
