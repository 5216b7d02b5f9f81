/**
 * The connector's socket surface (API.md, socket.io): handshake auth, join validation (room id,
 * bans, cursor), catch-up with a cursor, sends through the shared write path, deletions, and bad
 * input dropping the socket but never the process.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'socket.io-client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { openStore, type RedisStore } from '@danmaku/store';
import { testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { connectSocket, idsBeforeSentinel, metricValue, sendComments } from '../../../connector/test/helpers.js';

interface Packet {
  roomId: string;
  messages: { id: string; seq: number; type: string; content?: string }[];
  cursor: string;
}

type Ack = { ok: true; cursor?: string; id?: string; ts?: number } | { ok: false; error: { code: string; message: string } };

describe('connector', () => {
  const cluster = uniqueRoom('cluster');
  // A small buffer limit, so the slow-consumer test needs only a few packets.
  const config = testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, anonViewers: true, socketMaxBufferBytes: 16 * 1024, pushMergeMs: 20 });
  let system: Standalone;
  let store: RedisStore;
  let closeStore: () => Promise<void>;
  const sockets: Socket[] = [];

  before(async () => {
    system = await startStandalone(config, createLogger('test', 'silent'));
    ({ store, close: closeStore } = await openStore(config, 'test'));
  });
  after(async () => {
    for (const s of sockets) s.close();
    await system.stop();
    await closeStore();
  });

  const connect = (token?: string): Promise<Socket> => connectSocket(system.url, token, sockets);

  /** Messages of the room as the socket receives them; `cursors` has each packet's cursor. */
  function collect(socket: Socket, roomId: string): Packet['messages'] & { cursors: string[] } {
    const got = Object.assign([] as Packet['messages'], { cursors: [] as string[] });
    socket.on('messages', (p: Packet) => {
      if (p.roomId !== roomId) return;
      got.push(...p.messages);
      got.cursors.push(p.cursor);
    });
    return got;
  }

  const join = (socket: Socket, payload: unknown): Promise<Ack> => socket.timeout(5000).emitWithAck('join', payload) as Promise<Ack>;

  it('refuses a bad token in the handshake and lets anonymous viewers read', async () => {
    const refused = await connect('not-a-token').then(
      () => null,
      (err: Error & { data?: { code: string } }) => err,
    );
    assert.equal(refused?.data?.code, 'invalid_token');

    const roomId = uniqueRoom('anon');
    const anon = await connect();
    const got = collect(anon, roomId);
    assert.equal((await join(anon, { roomId, types: ['comment'] })).ok, true);
    const sendAck = (await anon.timeout(5000).emitWithAck('send', { roomId, type: 'comment', content: 'hi' })) as Ack;
    assert.deepEqual(sendAck.ok ? null : sendAck.error.code, 'missing_token');
    const ids = await sendComments(system.url, roomId, 3, 'to anon');
    await waitFor('anon receives', () => got.length === 3);
    assert.deepEqual(got.map((m) => m.id), ids);
  });

  it('sends through the same write path as HTTP and delivers to the room', async () => {
    const roomId = uniqueRoom('send');
    const sender = await connect(tokenFor('alice'));
    const viewer = await connect();
    const got = collect(viewer, roomId);
    assert.equal((await join(viewer, { roomId })).ok, true);
    const ack = (await sender.timeout(5000).emitWithAck('send', { roomId, type: 'comment', content: 'over the socket', clientMsgId: 'k1' })) as Ack;
    assert.equal(ack.ok, true);
    const again = (await sender.timeout(5000).emitWithAck('send', { roomId, type: 'comment', content: 'over the socket', clientMsgId: 'k1' })) as Ack;
    assert.ok(ack.ok && again.ok && again.id === ack.id, 'the same clientMsgId is the same message');
    // Valid JSON for the schema but refused by the write path (blank text): an error ack, no drop.
    const bad = (await sender.timeout(5000).emitWithAck('send', { roomId, type: 'comment', content: '   ' })) as Ack;
    assert.equal(bad.ok ? '' : bad.error.code, 'invalid_request');
    await waitFor('viewer receives', () => got.length >= 1);
    assert.deepEqual(await idsBeforeSentinel(system.url, roomId, got), [ack.ok ? ack.id : '']);
    assert.equal(got[0]?.content, 'over the socket');
    assert.ok(sender.connected, 'a refused send (schema-valid) does not drop the socket');
  });

  it('catches up from a cursor: what was missed, once, then live', async () => {
    const roomId = uniqueRoom('cursor');
    const first = await connect();
    const seen = collect(first, roomId);
    const joined = await join(first, { roomId, types: ['comment'] });
    assert.ok(joined.ok && joined.cursor);
    const early = await sendComments(system.url, roomId, 4, 'early');
    await waitFor('first socket has the early ones', () => seen.length === 4);
    const cursorAfterEarly = seen.cursors.at(-1) as string;
    first.close();

    const missed = await sendComments(system.url, roomId, 5, 'missed');
    const back = await connect();
    const got = collect(back, roomId);
    assert.equal((await join(back, { roomId, types: ['comment'], cursor: cursorAfterEarly })).ok, true);
    const live = await sendComments(system.url, roomId, 3, 'live');
    await waitFor('missed + live', () => got.length >= 8);
    assert.deepEqual(await idsBeforeSentinel(system.url, roomId, got), [...missed, ...live]);
    assert.ok(!got.some((m) => early.includes(m.id)));

    // A cursor this server did not make is refused with a clear code, and the socket stays.
    const wrong = await join(back, { roomId, cursor: '!!!' });
    assert.equal(wrong.ok ? '' : wrong.error.code, 'invalid_cursor');
    assert.ok(back.connected);
  });

  it('a second join of the same room (other types) loses and repeats nothing', async () => {
    const roomId = uniqueRoom('rejoin');
    const only = await connect();
    const got = collect(only, roomId);
    assert.equal((await join(only, { roomId, types: ['comment'] })).ok, true);
    const first = await sendComments(system.url, roomId, 3, 'first');
    await waitFor('first three', () => got.length === 3);
    const again = await join(only, { roomId, types: ['comment', 'gift'], cursor: got.cursors.at(-1) as string });
    assert.equal(again.ok, true);
    const second = await sendComments(system.url, roomId, 3, 'second');
    await waitFor('all six', () => got.length >= 6);
    assert.deepEqual(await idsBeforeSentinel(system.url, roomId, got), [...first, ...second]);
  });

  it('sends the room its online count and likes now and then', async () => {
    const roomId = uniqueRoom('info');
    const viewer = await connect(tokenFor('watcher'));
    const infos: { roomId: string; online: number; likes: number }[] = [];
    viewer.on('room', (i: { roomId: string; online: number; likes: number }) => infos.push(i));
    assert.equal((await join(viewer, { roomId })).ok, true);
    const likes = await fetch(`${system.url}/v1/rooms/${roomId}/likes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor('liker')}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count: 3 }),
    });
    assert.equal(likes.status, 202);
    // Every 5 s; the viewer counts as online (the join entered it), likes once the front flushed them.
    const got = await waitFor('a room event with the likes', () => infos.find((i) => i.likes === 3), 12_000);
    assert.equal(got.roomId, roomId);
    assert.equal(got.online, 1);
  });

  it('refuses banned users and tells sockets about deletions', async () => {
    const roomId = uniqueRoom('ban');
    // (a finite ban: RedisStore.isBanned reads a '+inf' score back as NaN, reported to its owner)
    await store.ban(roomId, 'mallory', Date.now() + 3_600_000);
    const mallory = await connect(tokenFor('mallory'));
    const refused = await join(mallory, { roomId });
    assert.equal(refused.ok ? '' : refused.error.code, 'banned');

    const viewer = await connect();
    assert.equal((await join(viewer, { roomId, types: ['comment'] })).ok, true);
    const deleted = new Promise<{ roomId: string; ids: string[] }>((resolve) => viewer.on('deleted', resolve));
    const [id] = await sendComments(system.url, roomId, 1, 'to delete');
    await waitFor('stored', async () => (await store.readSince(roomId, 'comment', 0, 10)).messages.length === 1);
    assert.equal(await store.deleteMessage(roomId, 'comment', id as string), true);
    assert.deepEqual(await deleted, { roomId, ids: [id] });
  });

  it('drops a socket that sends bad input, and keeps serving the others', async () => {
    const roomId = uniqueRoom('bad');
    const good = await connect();
    const got = collect(good, roomId);
    assert.equal((await join(good, { roomId, types: ['comment'] })).ok, true);

    for (const bad of [
      (s: Socket) => s.emit('join', 'not an object', () => undefined),
      (s: Socket) => s.emit('join', { roomId: 'bad room id!' }, () => undefined),
      (s: Socket) => s.emit('join', { roomId }),
      (s: Socket) => s.emit('explode', { a: 1 }),
      (s: Socket) => s.emit('send', { roomId, type: 'comment', content: 'x', extra: true }, () => undefined),
    ]) {
      const s = await connect(tokenFor('eve'));
      const closed = new Promise<string>((resolve) => s.once('disconnect', resolve));
      bad(s);
      assert.equal(await closed, 'io server disconnect');
    }
    const ids = await sendComments(system.url, roomId, 2, 'still here');
    await waitFor('the good socket still receives', () => got.length === 2);
    assert.deepEqual(got.map((m) => m.id), ids);
  });

  it('disconnects a consumer that stops reading, not the process', async () => {
    const roomId = uniqueRoom('slow');
    // A raw engine.io long-polling client that joins and then never polls again: everything the
    // room sends piles up in its server-side buffer.
    const base = `${system.url}/socket.io/?EIO=4&transport=polling`;
    const open = await (await fetch(base)).text();
    const sid = (JSON.parse(open.slice(1)) as { sid: string }).sid;
    const post = (body: string) => fetch(`${base}&sid=${sid}`, { method: 'POST', body, headers: { 'content-type': 'text/plain' } });
    assert.equal((await post('40')).status, 200);
    await (await fetch(`${base}&sid=${sid}`)).text(); // the namespace connect answer
    assert.equal((await post(`420${JSON.stringify(['join', { roomId, types: ['comment'] }])}`)).status, 200);
    await (await fetch(`${base}&sid=${sid}`)).text(); // the join ack; from here on it stops reading

    const good = await connect();
    const got = collect(good, roomId);
    assert.equal((await join(good, { roomId, types: ['comment'] })).ok, true);
    const before = await metricValue(system.url, 'danmaku_connector_dropped_sockets_total', { reason: 'slow_consumer' });
    const sent: string[] = [];
    await waitFor(
      'the slow consumer dropped',
      async () => {
        sent.push(...(await sendComments(system.url, roomId, 3, 'flood')));
        return (await metricValue(system.url, 'danmaku_connector_dropped_sockets_total', { reason: 'slow_consumer' })) > before;
      },
      20_000,
    );
    const gone = await fetch(`${base}&sid=${sid}`);
    assert.equal(gone.status, 400, 'its session is closed');
    // The reader that keeps up is unaffected.
    await waitFor('the good socket has everything', () => got.length === sent.length);
    assert.ok(good.connected);
  });
});
