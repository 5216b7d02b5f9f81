/**
 * A room whose live state expired (DANMAKU_ROOM_TTL_S after its last write) while viewers stayed
 * connected: its streams number from 1 again, and the connector and the SDK follow (the packet
 * says skipped, its cursor goes back) instead of taking the new messages for old ones.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { DanmakuClient, type Message } from '@danmaku/client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { openStore, keys, type RedisStore } from '@danmaku/store';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { connectSocket, sendComments } from '../../../connector/test/helpers.js';

const TTL_S = 2;

describe('a room that expired under connected viewers', () => {
  const config = testConfig({ cluster: uniqueRoom('cluster'), rateUserMax: 1_000_000, rateIpMax: 1_000_000, pushMergeMs: 20, pushSweepMs: 400, roomTtlS: TTL_S });
  let system: Standalone;
  let store: RedisStore;
  let closeStore: () => Promise<void>;
  const sockets: Socket[] = [];
  const clients: DanmakuClient[] = [];

  before(async () => {
    system = await startStandalone(config, createLogger('test', 'silent'));
    ({ store, close: closeStore } = await openStore(config, 'test'));
  });
  after(async () => {
    for (const c of clients) await c.stop();
    for (const s of sockets) s.close();
    await system.stop();
    await closeStore();
  });

  it('keeps delivering after the streams start again at seq 1: raw socket.io and the SDK', async () => {
    const roomId = uniqueRoom('expire');
    const socket = await connectSocket(system.url, undefined, sockets);
    const packets: { messages: { id: string; seq: number }[]; skipped?: boolean }[] = [];
    socket.on('messages', (p: { roomId: string; messages: { id: string; seq: number }[]; skipped?: boolean }) => {
      if (p.roomId === roomId) packets.push(p);
    });
    assert.ok(((await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'] })) as { ok: boolean }).ok);
    const delivered: Message[] = [];
    const sdk = new DanmakuClient({ baseUrl: system.url, roomId, types: ['comment'], metricsIntervalMs: 0, onMessages: (ms) => delivered.push(...ms) });
    clients.push(sdk);
    await sdk.start();
    await waitFor('the SDK connected', () => sdk.mode === 'long');

    const before = await sendComments(system.url, roomId, 3, 'before');
    await waitFor('both have the first comments', () => delivered.length === 3 && packets.flatMap((p) => p.messages).length === 3);
    await waitFor('the room expired', async () => (await store.write.exists(keys.seq(roomId, 'comment'))) === 0, TTL_S * 1000 + 5000);

    const afterIds = await sendComments(system.url, roomId, 2, 'after');
    await waitFor('the raw socket has the new comments', () => packets.flatMap((p) => p.messages).length === 5);
    const fresh = packets.flatMap((p) => p.messages).slice(3);
    assert.deepEqual(fresh.map((m) => [m.id, m.seq]), afterIds.map((id, i) => [id, i + 1]), 'numbered from 1 again');
    assert.ok(packets.slice(1).some((p) => p.skipped), 'the packet after the restart says skipped');
    await waitFor('the SDK has them too', () => delivered.length === 5);
    assert.deepEqual(delivered.map((m) => m.id), [...before, ...afterIds]);
  });
});
