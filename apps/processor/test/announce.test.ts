/**
 * What the processor announces after an append: a small batch carries its stored messages (the
 * very JSON the store holds, so a front's poll memory needs no read), and an announcement that
 * failed is made again in the background.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBus } from '@danmaku/bus';
import { streamKey } from '@danmaku/model';
import { createLogger } from '@danmaku/observability';
import type { RoomAdvanced } from '@danmaku/push';
import { openStore } from '@danmaku/store';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { startProcessor } from '../src/processor.js';

test('a small batch is announced with its stored messages, and a failed announcement again', async () => {
  const { store, close } = await openStore(testConfig(), 'announce-test');
  const bus = new MemoryBus({ partitions: 1 });
  const calls: RoomAdvanced[][] = [];
  const processor = await startProcessor({
    bus,
    store,
    topic: 'announce-test',
    logger: createLogger('test', 'silent'),
    batchSize: 100,
    announce: async (events) => {
      calls.push(events);
      if (calls.length === 1) throw new Error('Redis went away');
    },
  });
  try {
    const room = uniqueRoom('announce');
    const records = ['a', 'b', 'c'].map((id) => ({
      key: streamKey(room, 'comment'),
      partition: 0,
      value: JSON.stringify({ id: `${room}-${id}`, roomId: room, type: 'comment', ts: Date.now(), user: { id: 'u', name: 'U' }, content: id }),
    }));
    await bus.produce('announce-test', records);
    await waitFor('the announcement to be made again after it failed', () => calls.length >= 2, 10_000);
    assert.deepEqual(calls[1], calls[0]);
    const events = (calls[0] ?? []).filter((e) => e.roomId === room);
    assert.equal(events.length, 1);
    const stored = await store.readSince(room, 'comment', null, 10);
    assert.equal(events[0]?.seq, stored.newestSeq);
    assert.deepEqual(events[0]?.messages, stored.messages);
  } finally {
    await processor.stop();
    await close();
  }
});
