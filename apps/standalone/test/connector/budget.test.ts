/**
 * Hot rooms throttled by themselves: a room whose deliveries on this connector (messages x
 * sockets per second) pass DANMAKU_ROOM_DELIVERY_BUDGET has its comments sampled by the connector
 * (by seq; gifts whole; packets say skipped), shows in the metrics, and goes back to everything
 * once it is well under the budget (hysteresis). The bigRoomSampleRatio switch overrides it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { keptBySample } from '@danmaku/switches';
import { sleep, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { connectSocket, metricValue } from '../../../connector/test/helpers.js';

const BUDGET = 100;
const SOCKETS = 30;

interface Packet {
  roomId: string;
  messages: { id: string; seq: number; type: string }[];
  skipped?: boolean;
}

describe('room delivery budget', () => {
  let system: Standalone;
  const sockets: Socket[] = [];

  before(async () => {
    const config = testConfig({ cluster: uniqueRoom('cluster'), rateUserMax: 1_000_000, rateIpMax: 1_000_000, pushMergeMs: 20, pushSweepMs: 400, pushBigRoom: 5, roomDeliveryBudget: BUDGET });
    system = await startStandalone(config, createLogger('test', 'silent'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await system.stop();
  });

  const token = tokenFor('sender');
  async function send(roomId: string, body: object): Promise<string> {
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 202);
    return ((await res.json()) as { id: string }).id;
  }

  /**
   * Comments at `perSecond` for `ms` (and a gift every 10th), sent in bursts every 100 ms so the
   * pace holds on a busy machine; returns what was sent, with when.
   */
  async function traffic(roomId: string, perSecond: number, ms: number, prefix: string): Promise<{ comments: { id: string; at: number }[]; gifts: string[] }> {
    const comments: { id: string; at: number }[] = [];
    const gifts: string[] = [];
    const start = Date.now();
    const perTick = Math.max(1, Math.round(perSecond / 10));
    for (let tick = 0, i = 0; Date.now() - start < ms; tick++) {
      const at = Date.now();
      const burst: Promise<void>[] = [];
      for (let k = 0; k < perTick; k++, i++) {
        if (i % 10 === 9) burst.push(send(roomId, { type: 'gift', giftId: 'rose', count: 1 }).then((id) => void gifts.push(id)));
        else burst.push(send(roomId, { type: 'comment', content: `${prefix} ${i}` }).then((id) => void comments.push({ id, at })));
      }
      await Promise.all(burst);
      const wait = start + (tick + 1) * (perTick * 1000) / perSecond - Date.now();
      if (wait > 0) await sleep(wait);
    }
    return { comments, gifts };
  }

  it('samples a room over the budget by itself, keeps gifts whole, releases it well under; the switch overrides', async () => {
    const roomId = uniqueRoom('hot');
    const packets: Packet[] = [];
    for (let i = 0; i < SOCKETS; i++) {
      const socket = await connectSocket(system.url, undefined, sockets);
      if (i === 0) socket.on('messages', (p: Packet) => packets.push(p));
      const ack = (await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment', 'gift'] })) as { ok: boolean };
      assert.ok(ack.ok);
    }
    const got = (): Set<string> => new Set(packets.flatMap((p) => p.messages.map((m) => m.id)));
    const sampledBefore = await metricValue(system.url, 'danmaku_connector_budget_sampled_out_total');

    // Hot: 60 messages/s x 30 sockets = 1,800 deliveries/s, 18 times the budget (still several
    // times it if a busy machine sends slower).
    const sending = traffic(roomId, 60, 5000, 'hot');
    // The metric shows it while it lasts.
    await waitFor('the room throttled', async () => (await metricValue(system.url, 'danmaku_connector_throttled_rooms')) === 1, 4500).catch(async (err: Error) => {
      throw new Error(`${err.message} (sent ${(await sending).comments.length} comments in 5 s)`);
    });
    const hot = await sending;
    await waitFor('the gifts', () => hot.gifts.every((id) => got().has(id)));
    // After the first window the room keeps about 0.9 x budget / demand of its comments.
    const later = hot.comments.filter((c) => c.at - (hot.comments[0] as { at: number }).at > 2500);
    const kept = later.filter((c) => got().has(c.id)).length / later.length;
    const rate = (hot.comments.length + hot.gifts.length) / 5;
    console.log(`# over budget: ${Math.round(rate)} msgs/s x ${SOCKETS} sockets; ${Math.round(kept * 100)} % of the comments of the last 2.5 s kept (target ${Math.round((BUDGET * 0.9 * 100) / (rate * SOCKETS))} %), every gift`);
    const target = (BUDGET * 0.9) / (rate * SOCKETS);
    assert.ok(target < 0.6, `the room must be well over the budget for this test (${Math.round(rate)} msgs/s sent)`);
    assert.ok(Math.abs(kept - target) < 0.2, `sampled to the budget: kept ${kept}, target ${target}`);
    assert.ok(packets.some((p) => p.skipped), 'thinned packets say skipped');
    assert.ok((await metricValue(system.url, 'danmaku_connector_budget_sampled_out_total')) > sampledBefore);

    // Quiet (1/s: 30 deliveries/s, under 70 % of the budget: 70): released, everything delivered.
    await traffic(roomId, 1, 1200, 'cooling');
    await waitFor('released', async () => (await metricValue(system.url, 'danmaku_connector_throttled_rooms')) === 0, 5000);
    const from = packets.length;
    const calm = await traffic(roomId, 1, 2000, 'calm');
    await waitFor('every calm comment', () => calm.comments.every((c) => got().has(c.id)));
    assert.ok(packets.slice(from).every((p) => !p.skipped));

    // The operators' switch overrides the budget: at 0.2 the room keeps the comments that rule keeps.
    const admin = tokenFor('ops', 'admin');
    const put = async (ratio: number): Promise<void> => {
      const res = await fetch(`${system.url}/v1/admin/switches`, { method: 'PUT', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify({ bigRoomSampleRatio: ratio }) });
      assert.equal(res.status, 200);
    };
    // The standalone's connector reads the switchboard this PUT wrote through, so 0.2 holds from its answer on.
    await put(0.2);
    try {
      const start = packets.length;
      const overridden = await traffic(roomId, 60, 2000, 'switch');
      await waitFor('the gifts', () => overridden.gifts.every((id) => got().has(id)));
      // A comment delivered after the traffic's last one proves the rest were delivered or dropped
      // (one stream, in seq order). Sentinels are sampled too, so they go until one arrives.
      const sentinels = new Set<string>();
      await waitFor('a sentinel comment after the traffic', async () => {
        sentinels.add(await send(roomId, { type: 'comment', content: `sentinel ${sentinels.size}` }));
        return [...sentinels].some((id) => got().has(id));
      }, 10_000, 100);
      const comments = packets.slice(start).flatMap((p) => p.messages.filter((m) => m.type === 'comment'));
      assert.ok(comments.length > 0);
      assert.ok(comments.every((m) => keptBySample(m.seq, 0.2)), 'the switch rule, by seq');
      const share = comments.filter((m) => !sentinels.has(m.id)).length / overridden.comments.length;
      console.log(`# switch at 0.2 over a throttled room: ${Math.round(share * 100)} % of comments kept`);
      assert.ok(share < 0.4, `the switch, not the budget: ${share}`);
    } finally {
      await put(1);
    }
  });
});
