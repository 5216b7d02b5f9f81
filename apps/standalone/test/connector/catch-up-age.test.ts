/**
 * Catch-up with an age (DANMAKU_CATCHUP_MAX_AGE_MS): a viewer who comes back with a cursor that
 * points at messages older than the age gets only what is newer, told `skipped`; one whose cursor
 * is recent gets everything it missed. On a poll, a socket.io join, and a Bilibili-protocol join.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import { LiveWS } from 'bilibili-live-ws';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, uniqueRoom, waitFor } from '@danmaku/testkit';
import { connectSocket, sendComments } from '../../../connector/test/helpers.js';

const MAX_AGE_MS = 1500;

interface Poll {
  messages: { id: string; content: string }[];
  cursor: string;
  skipped: boolean;
}
interface Packet {
  roomId: string;
  messages: { id: string }[];
  cursor: string;
  skipped?: boolean;
}
type JoinAck = { ok: true; cursor: string; skipped?: boolean } | { ok: false; error: { code: string } };

describe('catch-up with an age', () => {
  let system: Standalone;
  const sockets: Socket[] = [];
  const lives: LiveWS[] = [];

  before(async () => {
    const config = testConfig({ cluster: uniqueRoom('cluster'), rateUserMax: 1_000_000, rateIpMax: 1_000_000, anonViewers: true, pushMergeMs: 20, pushSweepMs: 500, catchUpMaxAgeMs: MAX_AGE_MS });
    system = await startStandalone(config, createLogger('test', 'silent'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    for (const l of lives) l.close();
    await system.stop();
  });

  const poll = async (roomId: string, cursor?: string): Promise<Poll> => {
    const res = await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=comment${cursor ? `&cursor=${cursor}` : ''}`);
    assert.equal(res.status, 200);
    return (await res.json()) as Poll;
  };

  /** The cursor of a poll once the room holds `n` comments. */
  const cursorWhenStored = (roomId: string, n: number): Promise<string> =>
    waitFor(`${n} comments stored`, async () => {
      const p = await poll(roomId);
      return p.messages.length === n ? p.cursor : null;
    });

  /**
   * Resolves once every comment after `cursor` is past the catch-up age by the server's own clock:
   * a poll from the cursor is then skipped and empty.
   */
  const agedPast = (roomId: string, cursor: string): Promise<boolean> =>
    waitFor(`the comments of ${roomId} past the catch-up age`, async () => {
      const p = await poll(roomId, cursor);
      return p.skipped && p.messages.length === 0;
    }, MAX_AGE_MS + 10_000);

  /** A room with `old` comments, a cursor from before them, then `fresh` comments once those are past the age. */
  async function staleRoom(): Promise<{ roomId: string; cursor: string; old: string[]; fresh: string[] }> {
    const roomId = uniqueRoom('age');
    await sendComments(system.url, roomId, 1, 'first');
    const start = await cursorWhenStored(roomId, 1);
    const old = await sendComments(system.url, roomId, 4, 'old');
    await waitFor('the old comments stored', async () => (await poll(roomId)).messages.length === 5);
    await agedPast(roomId, start);
    const fresh = await sendComments(system.url, roomId, 3, 'fresh');
    await waitFor('all stored', async () => (await poll(roomId, start)).messages.length > 0 && (await poll(roomId)).messages.length === 8);
    return { roomId, cursor: start, old, fresh };
  }

  it('a poll with a stale cursor gets only the recent comments, skipped; a recent cursor gets all it missed', async () => {
    const { roomId, cursor, fresh } = await staleRoom();
    const stale = await poll(roomId, cursor);
    assert.deepEqual(stale.messages.map((m) => m.id), fresh);
    assert.equal(stale.skipped, true);
    // Polling on from there: nothing new, nothing skipped.
    const next = await poll(roomId, stale.cursor);
    assert.deepEqual({ n: next.messages.length, skipped: next.skipped }, { n: 0, skipped: false });
    // A cursor whose next message is recent: everything after it, not skipped.
    const recentRoom = uniqueRoom('recent');
    await sendComments(system.url, recentRoom, 1, 'a');
    const at = await cursorWhenStored(recentRoom, 1);
    const missed = await sendComments(system.url, recentRoom, 5, 'b');
    const back = await waitFor('all five', async () => {
      const p = await poll(recentRoom, at);
      return p.messages.length === 5 ? p : null;
    });
    assert.deepEqual(back.messages.map((m) => m.id), missed);
    assert.equal(back.skipped, false);
    // The replay API is the way to read everything: no cursor, no age rule (the newest window).
    assert.equal((await poll(roomId)).messages.length, 8);
  });

  it('a socket.io join with a stale cursor: the ack and the first packet say skipped, only recent comments come', async () => {
    const { roomId, cursor, fresh } = await staleRoom();
    const socket = await connectSocket(system.url, undefined, sockets);
    const packets: Packet[] = [];
    socket.on('messages', (p: Packet) => packets.push(p));
    const ack = (await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'], cursor })) as JoinAck;
    assert.ok(ack.ok, JSON.stringify(ack));
    assert.equal(ack.skipped, true);
    // The catch-up packet is emitted before the ack.
    assert.equal(packets.length, 1);
    assert.equal(packets[0]?.skipped, true);
    assert.deepEqual(packets[0]?.messages.map((m) => m.id), fresh);
    // Then live, unflagged.
    const live = await sendComments(system.url, roomId, 2, 'live');
    await waitFor('live comments', () => packets.flatMap((p) => p.messages).length === fresh.length + 2);
    assert.deepEqual(packets.slice(1).flatMap((p) => p.messages.map((m) => m.id)), live);
    assert.ok(packets.slice(1).every((p) => !p.skipped));

    // A join with a recent cursor (where the first socket is now), comments sent since: not
    // skipped, the whole catch-up.
    const afterLive = packets.at(-1)?.cursor;
    const later = await sendComments(system.url, roomId, 2, 'later');
    await waitFor('stored', async () => (await poll(roomId)).messages.length === 12);
    const again = await connectSocket(system.url, undefined, sockets);
    const got: Packet[] = [];
    again.on('messages', (p: Packet) => got.push(p));
    const recentAck = (await again.timeout(5000).emitWithAck('join', { roomId, types: ['comment'], cursor: afterLive })) as JoinAck;
    assert.ok(recentAck.ok && !recentAck.skipped, JSON.stringify(recentAck));
    // What the room had not pushed yet when the join read comes live: catch-up + live, once each.
    await waitFor('the later comments', () => got.flatMap((p) => p.messages).length >= later.length);
    assert.deepEqual(got.flatMap((p) => p.messages.map((m) => m.id)), later);
    assert.ok(got.every((p) => !p.skipped));
  });

  it('a Bilibili-protocol join gets no stale history, only what is sent after it', async () => {
    const roomid = randomInt(100_000_000, 2_000_000_000);
    const roomId = String(roomid);
    await sendComments(system.url, roomId, 1, 'first');
    const start = await cursorWhenStored(roomId, 1);
    await sendComments(system.url, roomId, 3, 'before');
    await waitFor('the comments before stored', async () => (await poll(roomId)).messages.length === 4);
    await agedPast(roomId, start);
    const live = new LiveWS(roomid, { address: `${system.url.replace('http', 'ws')}/sub`, protover: 3 });
    lives.push(live);
    const texts: string[] = [];
    live.on('error', () => undefined);
    live.on('DANMU_MSG', (data: { info: unknown[] }) => texts.push(String(data.info[1])));
    await new Promise<void>((resolve) => live.once('live', () => resolve()));
    await sendComments(system.url, roomId, 2, 'after');
    await waitFor('the live comments', () => texts.length === 2);
    // A sentinel after them: had any history come, it would be here before it.
    await sendComments(system.url, roomId, 1, 'sentinel');
    await waitFor('the sentinel', () => texts.includes('sentinel 0'));
    assert.deepEqual(texts, ['after 0', 'after 1', 'sentinel 0']);
  });
});
