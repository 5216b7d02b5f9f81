/**
 * Every degrade switch is flipped at run time through the admin endpoint
 * and its effect is seen without a restart, on this front at once and on another process's
 * snapshot within a refresh. Runs on a private Redis: switches are global, and flipping them
 * on the shared Redis would disturb the tests running beside this one.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { createRedis, waitReady, type Redis } from '@danmaku/store';
import { Switchboard, keptBySample } from '@danmaku/switches';
import { io, type Socket } from 'socket.io-client';
import { startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type TestRedis } from '@danmaku/testkit';
import { poll, post, send } from './hot-helpers.js';

describe('degrade switches', () => {
  let redis: TestRedis;
  let system: Standalone;
  let client: Redis;
  /** Another process's view (a router, another front): a snapshot refreshed every 100 ms. */
  let other: Switchboard;
  const admin = tokenFor('ops', 'admin');
  const viewer = tokenFor('viewer-1');

  const flip = async (patch: Record<string, unknown>): Promise<Record<string, unknown>> => {
    const res = await post(system.url, '/v1/admin/switches', admin, patch, 'PUT');
    assert.equal(res.status, 200, await res.clone().text());
    return ((await res.json()) as { switches: Record<string, unknown> }).switches;
  };

  before(async () => {
    redis = await startRedis();
    system = await startStandalone(
      testConfig({
        redisUrl: redis.url,
        switchesRefreshMs: 100,
        bigRoomOnline: 3,
        bigRoomPollRate: 1_000_000,
        cacheRefreshMs: 100,
        bigRoomPollLimit: 200,
        bigRoomSpanMs: 600_000,
        likesFlushMs: 100,
        rateUserMax: 1_000_000,
        rateIpMax: 1_000_000,
        // retryAfterMs is the subject here; a loaded test machine must not double it.
        pressureLagMs: 60_000,
        // Two sockets of one room on the embedded connector make it a big room there.
        pushBigRoom: 2,
        pushMergeMs: 20,
        pushBigMergeMs: 20,
      }),
      createLogger('test', 'silent'),
    );
    client = createRedis(redis.url);
    await waitReady(client);
    other = await new Switchboard({ redis: client, refreshMs: 100 }).start();
  });
  beforeEach(async () => {
    await client.del('dm:switches');
    await other.refresh();
  });
  after(async () => {
    other.stop();
    await system.stop();
    client.disconnect();
    await redis.stop();
  });

  it('needs an admin token and a valid body, and reports switches and hot gears', async () => {
    assert.equal((await post(system.url, '/v1/admin/switches', null)).status, 404, 'POST is not a route');
    let res = await fetch(`${system.url}/v1/admin/switches`);
    assert.equal(res.status, 401);
    res = await fetch(`${system.url}/v1/admin/switches`, { headers: { authorization: `Bearer ${viewer}` } });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'forbidden');
    for (const bad of [{ likes: 'no' }, { nope: true }, { bigRoomSampleRatio: 2 }, { readOnlyRooms: ['bad room'] }, {}]) {
      res = await post(system.url, '/v1/admin/switches', admin, bad, 'PUT');
      assert.equal(res.status, 400, JSON.stringify(bad));
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_request');
    }
    res = await fetch(`${system.url}/v1/admin/switches`, { headers: { authorization: `Bearer ${admin}` } });
    assert.equal(res.status, 200);
    const body = (await res.json()) as { switches: Record<string, unknown>; gears: Record<string, number> };
    assert.deepEqual(body.switches, { enterMessages: true, likes: true, forcePolling: false, pollIntervalMs: 0, readOnlyRooms: [], bigRoomSampleRatio: 1 });
    assert.deepEqual(body.gears, {});
  });

  it('readOnlyRooms: sends to that room are refused with 403 room_read_only, others pass, and it lifts', async () => {
    const room = uniqueRoom('ro');
    const elsewhere = uniqueRoom('rw');
    assert.equal((await send(system.url, viewer, room, { type: 'comment', content: 'before' })).status, 202);
    await flip({ readOnlyRooms: [room] });
    const res = await send(system.url, viewer, room, { type: 'comment', content: 'during' });
    assert.equal(res.status, 403);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'room_read_only');
    assert.equal((await send(system.url, viewer, elsewhere, { type: 'comment', content: 'other room' })).status, 202);
    await waitFor('the other process to see the read-only room', () => other.isReadOnly(room));
    await flip({ readOnlyRooms: ['*'] });
    assert.equal((await send(system.url, viewer, elsewhere, { type: 'comment', content: 'all read-only' })).status, 403);
    await flip({ readOnlyRooms: [] });
    assert.equal((await send(system.url, viewer, room, { type: 'comment', content: 'after' })).status, 202);
    await waitFor('both accepted comments stored', async () => (await poll(system.url, room, { types: 'comment' })).messages.length === 2);
    assert.deepEqual((await poll(system.url, room, { types: 'comment' })).messages.map((m) => m.content), ['before', 'after']);
  });

  it('likes: off answers 503 likes_disabled and counts nothing; on again counts', async () => {
    const room = uniqueRoom('likes');
    assert.equal((await post(system.url, `/v1/rooms/${room}/likes`, viewer, { count: 3 })).status, 202);
    await flip({ likes: false });
    const res = await post(system.url, `/v1/rooms/${room}/likes`, viewer, { count: 5 });
    assert.equal(res.status, 503);
    assert.equal(res.headers.get('retry-after'), '30');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'likes_disabled');
    await flip({ likes: true });
    assert.equal((await post(system.url, `/v1/rooms/${room}/likes`, viewer)).status, 202);
    const info = (await (await fetch(`${system.url}/v1/rooms/${room}`)).json()) as { likes: number };
    assert.equal(info.likes, 4);
  });

  it('enterMessages: off, entering posts no "X joined"; on, it does', async () => {
    const room = uniqueRoom('enter');
    await flip({ enterMessages: false });
    assert.equal((await post(system.url, `/v1/rooms/${room}/enter`, tokenFor('quiet'))).status, 200);
    await flip({ enterMessages: true });
    assert.equal((await post(system.url, `/v1/rooms/${room}/enter`, tokenFor('loud'))).status, 200);
    await waitFor('the enter message', async () => (await poll(system.url, room, { types: 'enter' })).messages.length > 0);
    // The processor works through the bus in order: had "quiet" been announced, it would be here by now.
    const entered = (await poll(system.url, room, { types: 'enter' })).messages.map((m) => m.user.id);
    assert.deepEqual(entered, ['loud']);
  });

  it('forcePolling: the flag another process (the router) reads flips within a refresh', async () => {
    assert.equal(other.forcePolling(), false);
    const switches = await flip({ forcePolling: true });
    assert.equal(switches.forcePolling, true);
    await waitFor('the other process to see forcePolling', () => other.forcePolling());
    await flip({ forcePolling: false });
    await waitFor('the other process to see it off', () => !other.forcePolling());
  });

  it('pollIntervalMs: raises retryAfterMs of every poll', async () => {
    const room = uniqueRoom('interval');
    assert.equal((await poll(system.url, room)).retryAfterMs, 2000);
    await flip({ pollIntervalMs: 7000 });
    assert.equal((await poll(system.url, room)).retryAfterMs, 7000);
    await flip({ pollIntervalMs: 0 });
    assert.equal((await poll(system.url, room)).retryAfterMs, 2000);
  });

  it('bigRoomSampleRatio: thins the comments of a big room, never its gifts, and leaves small rooms whole', async () => {
    const big = uniqueRoom('sample');
    const small = uniqueRoom('whole');
    const writer = tokenFor('writer');
    for (const room of [big, small]) {
      for (let i = 0; i < 100; i++) assert.equal((await send(system.url, writer, room, { type: 'comment', content: `c${i}` })).status, 202);
      for (let i = 0; i < 20; i++) assert.equal((await send(system.url, writer, room, { type: 'gift', giftId: 'rose' })).status, 202);
    }
    for (const room of [big, small]) {
      await waitFor(`messages stored in ${room}`, async () => (await poll(system.url, room, { types: 'comment,gift', limit: 200 })).messages.length === 120);
    }
    for (const u of ['a', 'b', 'c']) await post(system.url, `/v1/rooms/${big}/enter`, tokenFor(u));
    await waitFor('the big room to be cached', async () => {
      const metricsText = await (await fetch(`${system.url}/metrics`)).text();
      return /danmaku_front_cached_rooms \d*[1-9]/.test(metricsText) && (await poll(system.url, big, { types: 'comment', limit: 200 })).messages.length === 100;
    });

    await flip({ bigRoomSampleRatio: 0.5 });
    const sampled = await poll(system.url, big, { types: 'comment,gift', limit: 200 });
    const comments = sampled.messages.filter((m) => m.type === 'comment').length;
    assert.ok(comments >= 25 && comments <= 75, `about half the comments kept, got ${comments}`);
    assert.equal(sampled.messages.filter((m) => m.type === 'gift').length, 20, 'gifts are never dropped');
    assert.equal(sampled.skipped, true, 'a thinned answer says so');
    const whole = await poll(system.url, small, { types: 'comment,gift', limit: 200 });
    assert.equal(whole.messages.length, 120, 'small rooms are not sampled');

    await flip({ bigRoomSampleRatio: 0 });
    const none = await poll(system.url, big, { types: 'comment,gift', limit: 200 });
    assert.deepEqual([...new Set(none.messages.map((m) => m.type))], ['gift']);
    await flip({ bigRoomSampleRatio: 1 });
    assert.equal((await poll(system.url, big, { types: 'comment', limit: 200 })).messages.length, 100);
  });

  it('bigRoomSampleRatio: thins a big room on long connections too, by the same seqs as its polls, gifts whole', async () => {
    const big = uniqueRoom('push-sample');
    const small = uniqueRoom('push-whole');
    const writer = tokenFor('writer');
    type Packet = { roomId: string; messages: { type: string; seq: number }[]; skipped?: boolean };
    const sockets: Socket[] = [];
    const watch = async (roomId: string): Promise<Packet[]> => {
      const socket = io(system.url, { transports: ['websocket'], reconnection: false, auth: { token: viewer } });
      sockets.push(socket);
      const packets: Packet[] = [];
      socket.on('messages', (p: Packet) => {
        if (p.roomId === roomId) packets.push(p);
      });
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('connect_error', reject);
      });
      const ack = (await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment', 'gift'] })) as { ok: boolean };
      assert.equal(ack.ok, true);
      return packets;
    };
    try {
      await flip({ bigRoomSampleRatio: 0.5 });
      // Two viewers in the big room (the connector's big-room mark), one in the small room.
      const [bigA, bigB, alone] = [await watch(big), await watch(big), await watch(small)];
      for (const room of [big, small]) {
        for (let i = 0; i < 60; i++) assert.equal((await send(system.url, writer, room, { type: 'comment', content: `c${i}` })).status, 202);
        for (let i = 0; i < 10; i++) assert.equal((await send(system.url, writer, room, { type: 'gift', giftId: 'rose' })).status, 202);
      }
      const seqs = (packets: Packet[], type: string) => packets.flatMap((p) => p.messages.filter((m) => m.type === type).map((m) => m.seq));
      await waitFor('the small room whole', () => seqs(alone, 'comment').length === 60 && seqs(alone, 'gift').length === 10);
      const expected = Array.from({ length: 60 }, (_, i) => i + 1).filter((seq) => keptBySample(seq, 0.5));
      assert.ok(expected.length > 10 && expected.length < 50);
      await waitFor('every gift and the kept comments in the big room', () =>
        [bigA, bigB].every((got) => seqs(got, 'gift').length === 10 && seqs(got, 'comment').length >= expected.length),
      );
      // A comment kept by the rule after the 60 (one stream, in seq order) proves the rest were
      // delivered or dropped. Sentinels are sampled too, so they go until both viewers have one.
      await waitFor('a sentinel comment after the 60 on both viewers', async () => {
        assert.equal((await send(system.url, writer, big, { type: 'comment', content: 'sentinel' })).status, 202);
        return [bigA, bigB].every((got) => seqs(got, 'comment').some((seq) => seq > 60));
      }, 10_000, 100);
      for (const got of [bigA, bigB]) {
        assert.deepEqual(seqs(got, 'comment').filter((seq) => seq <= 60), expected, 'exactly the comments a poll keeps, in order');
        assert.ok(seqs(got, 'comment').every((seq) => keptBySample(seq, 0.5)), 'the sentinels by the same rule');
        assert.ok(got.some((p) => p.skipped === true), 'a thinned packet says so');
      }
      assert.equal(alone.some((p) => p.skipped === true), false, 'a small room is not thinned');
      const metricsText = await (await fetch(`${system.url}/metrics`)).text();
      assert.match(metricsText, /danmaku_connector_sampled_out_total \d*[1-9]/);
    } finally {
      for (const s of sockets) s.close();
      await flip({ bigRoomSampleRatio: 1 });
    }
  });
});
