/**
 * The fuzz suite (`npm run test:fuzz`, and part of `npm test`): seeded, bounded in time. A
 * standalone server in its own process, on a private Redis (the fuzzer flips global switches),
 * gets thousands of bad HTTP requests, raw TCP bytes, bad engine.io / socket.io packets, and bad
 * Bilibili-protocol packets (WebSocket /sub and raw TCP).
 * Zero 5xx, zero crashes, and every answer in the error shape.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { freePort, spawnTs, startRedis, type TestRedis } from '@danmaku/testkit';
import { formatReport, runFuzz } from './fuzz/run.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261202);
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
let redis: TestRedis;

before(async () => {
  redis = await startRedis({ port: Number(process.env.FUZZ_REDIS_PORT ?? 17110) });
});
after(async () => {
  await redis.stop();
});

test('fuzz: no 5xx, no crash, every answer in the error shape', { timeout: 300_000 }, async () => {
  const report = await runFuzz({
    seed: SEED,
    scale: SCALE,
    // FUZZ_ONLY="class,class": replay some classes alone (the totals check below then does not apply).
    ...(process.env.FUZZ_ONLY ? { only: process.env.FUZZ_ONLY.split(',') } : {}),
    start: async () => {
      const biliTcpPort = await freePort();
      const proc = spawnTs('apps/standalone/src/main.ts', { REDIS_URL: redis.url, REDIS_READ_URL: '', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'error', DANMAKU_JWT_SECRET: '', NODE_ENV: 'development', DANMAKU_BILI_TCP_PORT: String(biliTcpPort) });
      await proc.waitForOutput(/running \(standalone[^)]*\) on (http:\/\/\S+)/, 30_000);
      const url = /running \(standalone[^)]*\) on (http:\/\/\S+)/.exec(proc.output())?.[1] as string;
      return { url, proc, biliTcpPort };
    },
  });
  process.stdout.write(`${formatReport(report)}\n`);
  for (const [name, c] of Object.entries(report.classes)) {
    if (c.samples.length > 0) process.stdout.write(`${name} samples:\n  ${c.samples.join('\n  ')}\n`);
  }
  const total = Object.values(report.classes).reduce((sum, c) => sum + c.requests, 0);
  if (!process.env.FUZZ_ONLY) assert.ok(total >= 5000 * SCALE, `only ${total} inputs`);
  assert.equal(report.crashes, 0, 'the server crashed');
  for (const [name, c] of Object.entries(report.classes)) {
    assert.equal(c.server5xx, 0, `${name}: 5xx answers`);
    assert.equal(c.outOfShape, 0, `${name}: answers out of the error shape`);
    assert.ok(c.answers > 0, `${name}: no answers at all`);
  }
  // Well-formed HTTP requests always get an answer; raw bytes may end a connection without one.
  if (report.classes['http routes']) assert.equal(report.classes['http routes'].noAnswer, 0, 'http routes: requests without an answer');
  // Every Bilibili-protocol connection gets its answer: a reply, or closed (at the latest by the auth deadline).
  if (report.classes['bilibili-protocol packets']) {
    assert.equal(report.classes['bilibili-protocol packets'].noAnswer, 0, 'bilibili: connections left without an answer');
    assert.ok(report.classes['bilibili-protocol packets'].requests >= 400 * SCALE, 'bilibili: too few inputs');
  }
  // A bound against a hang, not a speed test: about 40 s alone on the 2-core VM, more when loaded.
  assert.ok(report.durationMs < 240_000, `took ${report.durationMs} ms`);
});
