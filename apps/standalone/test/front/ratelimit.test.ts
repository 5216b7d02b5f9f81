import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { io, type Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { startStandalone } from '@danmaku/standalone';
import { freePort, spawnTs, startKafka, testConfig, tokenFor, uniqueRoom, type TestKafka, type Spawned } from '@danmaku/testkit';
import { testDatabase } from '../../../../packages/archive/test/db.js';
import { call } from './lives-stack.js';

const USER_MAX = 10;
const IP_MAX = 15;
const db = testDatabase('ratelimit');
let kafka: TestKafka;
const fronts: { url: string; process: Spawned }[] = [];

before(async () => {
  kafka = await startKafka({ topics: { 'danmaku.messages': 4 } });
  for (let i = 0; i < 2; i++) {
    const port = await freePort();
    const process = spawnTs('apps/front/src/main.ts', {
      KAFKA_BROKERS: kafka.brokers.join(','),
      DANMAKU_PARTITIONS: '4',
      PORT: String(port),
      MYSQL_URL: db.url,
      REDIS_URL: testConfig().redisUrl,
      DANMAKU_RATE_USER_MAX: String(USER_MAX),
      DANMAKU_RATE_IP_MAX: String(IP_MAX),
      DANMAKU_RATE_WINDOW_MS: '60000',
      // The test plays several clients from one machine through X-Forwarded-For.
      DANMAKU_TRUST_PROXY: 'true',
      LOG_LEVEL: 'info',
    });
    fronts.push({ url: `http://127.0.0.1:${port}`, process });
  }
  await Promise.all(fronts.map((f) => f.process.waitForOutput(/front listening/, 30_000)));
});
after(async () => {
  await Promise.all(fronts.map((f) => f.process.kill()));
  await kafka?.stop();
  await db.drop();
});

const uniqueIp = (): string => `10.${[...randomBytes(3)].join('.')}`;

// Each front grants half of a limit (DANMAKU_RATE_LOCAL_SHARE, 0.5) from its own count and adds
// its counts to Redis in the background; past that half, Redis decides each send. So over two
// fronts a sender gets at least the limit and at most 1.5 times it, and once the fronts have synced
// (DANMAKU_RATE_SYNC_MS, 100 ms) both refuse.
const SYNCED_MS = 400;

describe('rate limits hold across two front processes sharing Redis', () => {
  test('per user: one user gets USER_MAX to 1.5 x USER_MAX messages in the window, however the sends are spread', async () => {
    const room = uniqueRoom('rl');
    const token = tokenFor(`rl-user-${randomBytes(4).toString('hex')}`);
    const ip = uniqueIp();
    const statuses: number[][] = [[], []];
    const send = async (front: number, i: number) => {
      const res = await call((fronts[front] as { url: string }).url, 'POST', `/v1/rooms/${room}/messages`, {
        token,
        body: { type: 'comment', content: `m${i}` },
        headers: { 'x-forwarded-for': ip },
      });
      if (res.status === 429) {
        assert.equal((res.body.error as { code: string }).code, 'rate_limited');
        const retryAfter = Number(res.headers.get('retry-after'));
        assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${retryAfter}`);
      }
      return res.status;
    };
    for (let i = 0; i < 3 * USER_MAX; i++) (statuses[i % 2] as number[]).push(await send(i % 2, i));
    const all = [...(statuses[0] as number[]), ...(statuses[1] as number[])];
    const accepted = all.filter((s) => s === 202).length;
    assert.ok(accepted >= USER_MAX && accepted <= 1.5 * USER_MAX, `accepted over both fronts: ${accepted} ${JSON.stringify(statuses)}`);
    assert.equal(all.filter((s) => s === 429).length, 3 * USER_MAX - accepted);
    for (const s of statuses) assert.ok(s.includes(202) && s.includes(429), 'each front accepted some and refused some');
    await new Promise((resolve) => setTimeout(resolve, SYNCED_MS));
    assert.deepEqual([await send(0, -1), await send(1, -2)], [429, 429], 'synced: both fronts refuse');
  });

  test('per IP: many users behind one address share IP_MAX (to 1.5 x IP_MAX when they arrive together)', async () => {
    const room = uniqueRoom('rlip');
    const ip = uniqueIp();
    const send = (front: number, user: string) =>
      call((fronts[front] as { url: string }).url, 'POST', `/v1/rooms/${room}/messages`, {
        token: tokenFor(`ip-user-${user}-${randomBytes(3).toString('hex')}`),
        body: { type: 'comment', content: `hi ${user}` },
        headers: { 'x-forwarded-for': ip },
      });
    const results = await Promise.all(Array.from({ length: 2 * IP_MAX }, (_, i) => send(i % 2, String(i))));
    const accepted = results.filter((r) => r.status === 202).length;
    assert.ok(accepted >= IP_MAX && accepted <= Math.floor(1.5 * IP_MAX), `accepted ${accepted} of ${2 * IP_MAX}`);
    assert.equal(results.filter((r) => r.status === 429).length, 2 * IP_MAX - accepted);
    await new Promise((resolve) => setTimeout(resolve, SYNCED_MS));
    assert.deepEqual([(await send(0, 'late0')).status, (await send(1, 'late1')).status], [429, 429], 'synced: both fronts refuse');
    // Another address is not affected.
    const other = await call((fronts[0] as { url: string }).url, 'POST', `/v1/rooms/${room}/messages`, {
      token: tokenFor(`ip-user-x-${randomBytes(3).toString('hex')}`),
      body: { type: 'comment', content: 'elsewhere' },
      headers: { 'x-forwarded-for': uniqueIp() },
    });
    assert.equal(other.status, 202);
  });
});

describe('the per-user limit covers socket sends too', () => {
  test('HTTP and socket.io sends of one user share one budget', async () => {
    const db2 = testDatabase('ratelimit_sock');
    const system = await startStandalone(testConfig({ mysqlUrl: db2.url, rateUserMax: 5, rateWindowMs: 60_000 }), createLogger('test', 'silent'));
    let socket: Socket | null = null;
    try {
      const room = uniqueRoom('rlsock');
      const token = tokenFor(`sock-user-${randomBytes(4).toString('hex')}`);
      let accepted = 0;
      for (let i = 0; i < 3; i++) {
        const res = await call(system.url, 'POST', `/v1/rooms/${room}/messages`, { token, body: { type: 'comment', content: `http ${i}` } });
        if (res.status === 202) accepted++;
      }
      socket = io(system.url, { transports: ['websocket'], reconnection: false, auth: { token } });
      await new Promise<void>((resolve, reject) => {
        socket?.once('connect', () => resolve());
        socket?.once('connect_error', reject);
      });
      const codes: string[] = [];
      for (let i = 0; i < 5; i++) {
        const ack = (await socket.timeout(5000).emitWithAck('send', { roomId: room, type: 'comment', content: `socket ${i}` })) as { ok?: boolean; id?: string; error?: { code: string } };
        if (ack.error) codes.push(ack.error.code);
        else accepted++;
      }
      assert.equal(accepted, 5);
      assert.deepEqual(codes, ['rate_limited', 'rate_limited', 'rate_limited']);
    } finally {
      socket?.close();
      await system.stop();
      await db2.drop();
    }
  });
});
