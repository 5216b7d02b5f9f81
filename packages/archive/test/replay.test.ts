import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Archive, MAX_SEGMENTS_PER_READ, ReplayReader, replayKeys, toArchiveRow, type ArchiveRow } from '@danmaku/archive';
import type { MessageType } from '@danmaku/protocol';
import { registry } from '@danmaku/observability';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { testConfig, uniqueRoom } from '@danmaku/testkit';
import { testDatabase } from './db.js';

const db = testDatabase('replayr');
const archive = new Archive(db.url);
let redis: Redis;
const ALL = new Set<MessageType>(['comment', 'gift', 'system']);

before(async () => {
  redis = createRedis(testConfig().redisUrl);
  await waitReady(redis);
});
after(async () => {
  redis.disconnect();
  await archive.close();
  await db.drop();
});

async function tier(name: string): Promise<number> {
  const metric = registry.getSingleMetric('danmaku_replay_segment_reads_total');
  const values = metric ? (await metric.get()).values : [];
  return values.filter((v) => v.labels.tier === name).reduce((sum, v) => sum + v.value, 0);
}

function reader(segmentMs: number, settleMs = 0): ReplayReader {
  return new ReplayReader({ archive, redis, segmentMs, redisTtlS: 60, cacheBytes: 8 * 1024 * 1024, settleMs });
}

async function seedLive(offsets: number[], ended = true): Promise<string> {
  const liveId = `lv-${uniqueRoom()}`;
  const startedAt = Date.now() - 3_600_000;
  await archive.recordLiveStart({ liveId, roomId: 'room', startedAt, endedAt: null }, 's');
  const rows = offsets.map((offsetMs, i) =>
    toArchiveRow(JSON.stringify({ id: `${liveId}-${i}`, roomId: 'room', type: 'comment', ts: startedAt + offsetMs, user: { id: 'u', name: 'u' }, content: `c${i}`, liveId, offsetMs })),
  );
  await archive.insert(rows as ArchiveRow[]);
  if (ended) await archive.recordLiveEnd(liveId, startedAt + Math.max(0, ...offsets) + 1);
  return liveId;
}

async function readAll(r: ReplayReader, liveId: string, limit: number): Promise<{ ids: string[]; pages: number }> {
  const ids: string[] = [];
  let from: number | null = 0;
  let pages = 0;
  while (from !== null) {
    const page = await r.read(liveId, { from, limit, types: ALL });
    ids.push(...page.messages.map((m) => (JSON.parse(m) as { id: string }).id));
    from = page.next;
    pages++;
  }
  return { ids, pages };
}

describe('ReplayReader', () => {
  test('concurrent misses of one segment load it once (single flight)', async () => {
    const liveId = await seedLive(Array.from({ length: 50 }, (_, i) => i * 10));
    const r = reader(1000);
    const before = await tier('mysql');
    const pages = await Promise.all(Array.from({ length: 20 }, () => r.read(liveId, { from: 0, to: 1000, limit: 100, types: ALL })));
    assert.equal((await tier('mysql')) - before, 1, 'one MySQL load for 20 concurrent requests');
    for (const page of pages) assert.equal(page.messages.length, 50);
  });

  test('a sparse live pages through a bounded number of segments per request and misses nothing', async () => {
    const offsets = Array.from({ length: 12 }, (_, i) => i * 100 + 5); // one message every 10 segments
    const liveId = await seedLive(offsets);
    const r = reader(10);
    const first = await r.read(liveId, { from: 0, limit: 1000, types: ALL });
    assert.equal(first.next, MAX_SEGMENTS_PER_READ * 10, 'stops after the segment budget');
    assert.equal(first.messages.length, 3);
    const all = await readAll(r, liveId, 1000);
    assert.deepEqual(all.ids, offsets.map((_, i) => `${liveId}-${i}`));
  });

  test('pages never split one offset: same-ms messages stay together', async () => {
    const liveId = await seedLive([5, 5, 5, 7, 7, 9, 9, 9, 9, 12]);
    const r = reader(1000);
    const page = await r.read(liveId, { from: 0, limit: 2, types: ALL });
    assert.equal(page.messages.length, 3);
    assert.equal(page.next, 7);
    const all = await readAll(r, liveId, 2);
    assert.equal(all.ids.length, 10);
    assert.equal(new Set(all.ids).size, 10);
  });

  test('a running live\'s unsettled segments are not written to the replay Redis; settled ones are, and invalidate drops them', async () => {
    const liveId = `lv-${uniqueRoom()}`;
    const now = Date.now();
    await archive.recordLiveStart({ liveId, roomId: 'room', startedAt: now - 10_000, endedAt: null }, 's');
    await archive.insert([
      toArchiveRow(JSON.stringify({ id: `${liveId}-old`, roomId: 'room', type: 'comment', ts: now - 9000, user: { id: 'u', name: 'u' }, content: 'old', liveId, offsetMs: 1000 })) as ArchiveRow,
      toArchiveRow(JSON.stringify({ id: `${liveId}-new`, roomId: 'room', type: 'comment', ts: now - 100, user: { id: 'u', name: 'u' }, content: 'new', liveId, offsetMs: 9900 })) as ArchiveRow,
    ]);
    const r = reader(2000, 3000);
    const page = await r.read(liveId, { from: 0, limit: 100, types: ALL });
    assert.equal(page.messages.length, 2);
    assert.equal(await redis.exists(replayKeys.segment(liveId, 0)), 1, 'settled segment cached in Redis');
    assert.equal(await redis.exists(replayKeys.segment(liveId, 4)), 0, 'the segment still being archived is not');
    await r.invalidate(liveId);
    assert.equal(await redis.exists(replayKeys.segment(liveId, 0)), 0);
  });
  test('density: counts per span add up to what read() pages through, cached until invalidated, and reach past the end', async () => {
    const offsets = [0, 10, 990, 1000, 1500, 2999, 2999, 3000];
    const liveId = await seedLive(offsets);
    const r = reader(1000);
    const d = await r.density(liveId, 3, ALL);
    // Ended 1 ms after the last message: 3001 ms, spans of 1001 ms.
    assert.deepEqual(d, { liveId, durationMs: 3001, bucketMs: 1001, counts: [4, 1, 3] });
    assert.equal(d.counts.reduce((a, b) => a + b, 0), (await readAll(r, liveId, 1000)).ids.length);
    assert.deepEqual((await r.density(liveId, 3, new Set<MessageType>(['gift']))).counts, [0, 0, 0], 'by type');

    // Rows written behind the reader's back (no invalidation) do not show: the answer is cached...
    const live = (await archive.live(liveId))!;
    const late = (i: number, offsetMs: number) =>
      toArchiveRow(JSON.stringify({ id: `${liveId}-late-${i}`, roomId: 'room', type: 'comment', ts: live.startedAt + offsetMs, user: { id: 'u', name: 'u' }, content: 'late', liveId, offsetMs })) as ArchiveRow;
    await archive.insert([late(0, 500), late(1, 60_000)]);
    assert.deepEqual((await r.density(liveId, 3, ALL)).counts, [4, 1, 3]);
    // ...until the live is invalidated (a delete, an import): then the new rows count, and one far
    // past the end makes the live's messages reach it.
    await r.invalidate(liveId);
    const after = await r.density(liveId, 3, ALL);
    assert.deepEqual([after.durationMs, after.bucketMs], [60_001, 20_001]);
    assert.deepEqual(after.counts, [offsets.length + 1, 0, 1]);
    assert.equal((await readAll(r, liveId, 1000)).ids.length, offsets.length + 2, 'read() reaches it too');
  });
});
