import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildRows } from '../lib/suite.js';

const load = (name: string, reqPerSec: number, serverCpuUsPerReq: number | null, extra: Record<string, unknown> = {}) => ({ name, reqPerSec, serverCpuUsPerReq, latencyMs: { p50: 1, p90: 2, p99: 3, max: 4 }, ...extra });

// The shapes the benches write today (trimmed to what the table reads).
const results = {
  send: { at: '', results: [load('JSON echo (Fastify baseline)', 30_000, 30), load('send comment (202)', 18_000, 60)], summary: { accepted: 100, stored: 100 } },
  poll: {
    at: '',
    results: [load('hello-world (Fastify baseline)', 50_000, 20), load('poll big room (local cache)', 45_000, 22, { redisCpuUsPerReq: 2 }), load('poll small room (Redis)', 9_000, 80, { redisCpuUsPerReq: 30 })],
    summary: { staticCpuUs: 18, staticPerS: 40_000 },
  },
  'send-low': { at: '', summary: { ratePerS: 200, serverUsPerMessage: 1500, redisUsPerMessage: 200, redisCommandsPerMessage: 9, echoUsPerRequest: 600, echoRedisUsPerRequest: 700 } },
  fanout: {
    at: '',
    rate: 200,
    results: [
      { system: 'ours', sent: 2000, cpuByProcess: { redis: 1, server: 0.5, connector: 2 }, deliveriesPerServerCpuSecond: 2_100_000, latencyMs: { p99: 250 }, lost: 0, duplicates: 0 },
      { system: 'bili', sent: 2000, cpuByProcess: { redis: 1, server: 0.5, connector: 1 }, deliveriesPerServerCpuSecond: 2_500_000, latencyMs: { p99: 400 }, lost: 0, duplicates: 0 },
      { system: 'baseline', sent: 1200, cpuByProcess: { baseline: 30 }, deliveriesPerServerCpuSecond: 100_000, latencyMs: { p99: 30_000 }, lost: 0, duplicates: 2 },
    ],
  },
  connections: {
    at: '',
    results: [
      { system: 'ours', joined: 10_000, bytesPerConnection: 7 * 1024, rssBeforeBytes: 100 << 20, rssAfterBytes: 170 << 20, rssAfterCloseBytes: 105 << 20, connectionsPerSecond: 900 },
      { system: 'bili', joined: 10_000, bytesPerConnection: 5 * 1024, rssBeforeBytes: 100 << 20, rssAfterBytes: 150 << 20 },
      { system: 'bili-tcp', joined: 10_000, bytesPerConnection: 3.5 * 1024, rssBeforeBytes: 100 << 20, rssAfterBytes: 135 << 20, rssAfterCloseBytes: 101 << 20 },
    ],
  },
  replay: { at: '', runs: [load('hot (local cache, one segment)', 20_000, null), load('warm (replay Redis, random segment)', 5_000, null), load('cold (MySQL, random segment)', 1_000, null)] },
  'live-show': { at: '', summary: { seconds: 60, rooms: 200, viewers: { joined: 2000 }, deliveriesPerSecond: 90_000, latencyMs: { all: { p50: 100, p99: 280 } }, polls: { perSecond: 400 }, serverCpuSeconds: 50, cpu: { front: { percentOfCore: 30 } }, lost: 0, duplicated: 0, lostSends: 0 } },
};

test('suite table: ratios against the baselines of the same run, targets met or not', () => {
  const { rows, checks } = buildRows(results);
  const row = (pattern: RegExp) => {
    const r = rows.find((x) => pattern.test(x.row));
    assert.ok(r, `a row matching ${pattern}`);
    return r;
  };
  assert.equal(row(/^send, saturated/).ratio, '60 %');
  assert.equal(row(/^send, saturated/).met, true);
  // front + processor + pusher (the server process) only: 0.5 CPU s over 2,000 messages.
  assert.equal(row(/^send at 200/).ours.startsWith('250 us/msg'), true);
  assert.equal(row(/^send at 200/).met, true);
  // CPU per request, Redis's share included: 20 / 24 and 110 / 24.
  assert.equal(row(/^cached poll \/ hello/).ratio, '83 %');
  assert.equal(row(/^cached poll \/ hello/).met, true);
  assert.equal(row(/^cached \/ uncached/).ratio, '4.6x');
  assert.equal(row(/socket\.io\)$/).met, true);
  assert.equal(row(/Bilibili protocol\)$/).met, false, 'p99 400 ms misses the 300 ms budget');
  assert.equal(row(/ours \/ plain socket.io/).ratio, '21.0x');
  assert.equal(row(/idle connection memory, socket.io/).met, true);
  assert.match(row(/idle connection memory, socket.io/).ours, /900 conn\/s.*after close 105 MB/);
  assert.equal(row(/idle connection memory, Bilibili over WebSocket/).met, false, '5 KB is over 4 KB');
  assert.match(row(/idle connection memory, Bilibili over WebSocket/).ours, /after close n\/a/);
  assert.equal(row(/idle connection memory, Bilibili over TCP/).met, true);
  // One request alone at 200/s: ours against the same posts to a Fastify echo at that pace.
  assert.equal(row(/^send one at a time/).ratio, '2.5x');
  assert.match(row(/^send one at a time/).baseline, /600 us\/req \(after one Redis trip 700 us\)/);
  assert.equal(row(/^send one at a time/).met, false);
  // The same bytes from a bare route: 18 us against the cached poll's 24 (Redis share included).
  assert.equal(row(/same bytes/).ratio, '75 %');
  assert.equal(row(/replay, cold/).ratio, '5 %');
  assert.equal(row(/^live show/).met, true);
  // The plain socket.io duplicated two: its check fails, the others pass.
  assert.deepEqual(
    checks.map((c) => c.ok),
    [true, true, true, false, true],
  );
});

test('suite table: a bench that gave nothing is n/a, and its nothing-lost checks fail', () => {
  const { rows, checks } = buildRows({ send: null, poll: null, fanout: null, connections: null, replay: null, 'live-show': null });
  assert.ok(rows.length >= 12);
  for (const r of rows) assert.equal(r.met, null, `${r.row} has no figure`);
  assert.match(rows[0]?.ours ?? '', /n\/a/);
  assert.ok(checks.length >= 3);
  assert.ok(checks.every((c) => !c.ok));
});

test('suite table: a moved pusher in the fan-out bench still counts toward the per-message CPU', () => {
  const fanout = { rate: 200, results: [{ system: 'ours', sent: 1000, cpuByProcess: { front: 0.1, processor: 0.1, pusher: 0.1, connector: 5, redis: 5 }, lost: 0, duplicates: 0 }] };
  const { rows } = buildRows({ fanout });
  assert.match(rows.find((r) => r.row.startsWith('send at 200'))?.ours ?? '', /^300 us\/msg/);
});
