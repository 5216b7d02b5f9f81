/**
 * Bans that bite: a ban (POST /v1/rooms/:roomId/bans) or a kick (POST /v1/rooms/:roomId/kicks)
 * takes the user's live sessions out of the room on every transport within a second (the SDK
 * and a raw socket.io client hear why; a Bilibili-protocol client gets ROOM_BLOCK_MSG and is
 * closed), the other viewers keep receiving, and a banned user's rejoin is refused.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import type { Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { LiveWS } from 'bilibili-live-ws';
import { Op, Ver, decodeServerPackets, encodePacket } from '@danmaku/bilibili';
import { DanmakuClient, type ClientError } from '@danmaku/client';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';
import { connectSocket, sendComments, spawnConnector, type ConnectorProcess } from '../../../connector/test/helpers.js';

type JoinAck = { ok: true; cursor: string } | { ok: false; error: { code: string; message: string } };
interface Kicked {
  roomId: string;
  code: string;
  message: string;
}

describe('bans and kicks take effect on live sessions', () => {
  const cluster = uniqueRoom('cluster');
  let system: Standalone;
  /** A second connector, its own process: the ban reaches every connector. */
  let second: ConnectorProcess;
  const sockets: Socket[] = [];
  const lives: LiveWS[] = [];
  const clients: DanmakuClient[] = [];

  before(async () => {
    const config = testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, anonViewers: true, pushMergeMs: 20, pushSweepMs: 500 });
    system = await startStandalone(config, createLogger('test', 'silent'));
    second = await spawnConnector({ DANMAKU_CLUSTER: cluster, DANMAKU_PUSH_MERGE_MS: '20', DANMAKU_PUSH_SWEEP_MS: '500' });
  });
  after(async () => {
    for (const c of clients) await c.stop();
    for (const s of sockets) s.close();
    for (const l of lives) l.close();
    await second?.proc.kill('SIGKILL');
    await system.stop();
  });

  const post = (path: string, body: unknown, token?: string): Promise<Response> =>
    fetch(`${system.url}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });

  /** A socket.io viewer in the room, collecting comment texts and the kicked event. */
  async function socketViewer(roomId: string, user?: string, url = system.url): Promise<{ socket: Socket; texts: string[]; kicked: Kicked[] }> {
    const socket = await connectSocket(url, user ? tokenFor(user) : undefined, sockets);
    const texts: string[] = [];
    const kicked: Kicked[] = [];
    socket.on('messages', (p: { roomId: string; messages: { content?: string }[] }) => {
      if (p.roomId === roomId) for (const m of p.messages) texts.push(m.content ?? '');
    });
    socket.on('kicked', (k: Kicked) => kicked.push(k));
    const ack = (await socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'] })) as JoinAck;
    assert.ok(ack.ok, JSON.stringify(ack));
    return { socket, texts, kicked };
  }

  /** A Bilibili-protocol viewer (the npm library), as `user` when given (its token as the key). */
  async function biliViewer(roomid: number, user?: string): Promise<{ live: LiveWS; texts: string[]; blocks: unknown[]; closed: () => boolean }> {
    const live = new LiveWS(roomid, { address: `${system.url.replace('http', 'ws')}/sub`, protover: 3, ...(user ? { key: tokenFor(user) } : {}) });
    lives.push(live);
    const texts: string[] = [];
    const blocks: unknown[] = [];
    let closed = false;
    live.on('error', () => undefined);
    live.on('close', () => (closed = true));
    live.on('DANMU_MSG', (data: { info: unknown[] }) => texts.push(String(data.info[1])));
    live.on('ROOM_BLOCK_MSG', (data: unknown) => blocks.push(data));
    await new Promise<void>((resolve) => live.once('live', () => resolve()));
    return { live, texts, blocks, closed: () => closed };
  }

  it('a ban takes the viewer out within a second on socket.io (SDK and raw) and Bilibili; others keep receiving; rejoin refused', async () => {
    const roomid = randomInt(100_000_000, 2_000_000_000);
    const roomId = String(roomid);
    const streamer = tokenFor('owner', 'streamer', [roomId]);

    // The banned user, on four sessions: the SDK, a raw socket on each connector, a Bilibili connection.
    const sdkTexts: string[] = [];
    const sdkErrors: ClientError[] = [];
    const sdk = new DanmakuClient({ baseUrl: system.url, roomId, types: ['comment'], token: tokenFor('troll'), metricsIntervalMs: 0, onMessages: (ms) => sdkTexts.push(...ms.map((m) => m.content ?? '')), onError: (e) => sdkErrors.push(e) });
    clients.push(sdk);
    await sdk.start();
    await waitFor('the SDK on its long connection', () => sdk.mode === 'long');
    const raw = await socketViewer(roomId, 'troll');
    const bili = await biliViewer(roomid, 'troll');
    const elsewhere = await socketViewer(roomId, 'troll', second.url);
    // Other viewers: a signed-in one and an anonymous one on socket.io, one on Bilibili.
    const friend = await socketViewer(roomId, 'friend');
    const anon = await socketViewer(roomId);
    const biliFriend = await biliViewer(roomid);
    const friendElsewhere = await socketViewer(roomId, 'friend', second.url);

    await sendComments(system.url, roomId, 2, 'before');
    const everyone = [() => sdkTexts, () => raw.texts, () => elsewhere.texts, () => bili.texts, () => friend.texts, () => anon.texts, () => biliFriend.texts];
    await waitFor('everyone has the first comments', () => everyone.every((t) => t().length === 2));

    const t0 = Date.now();
    const res = await post(`/v1/rooms/${roomId}/bans`, { userId: 'troll' }, streamer);
    assert.equal(res.status, 200, await res.text());
    await waitFor('the raw sockets are told, on both connectors', () => raw.kicked.length === 1 && elsewhere.kicked.length === 1, 1000, 10);
    await waitFor('the SDK surfaces it', () => sdkErrors.length === 1, 1000, 10);
    await waitFor('the Bilibili connection is blocked and closed', () => bili.closed(), 1000, 10);
    const outMs = Date.now() - t0;
    console.log(`# banned viewer out of the room on every session ${outMs} ms after the ban was answered`);
    assert.ok(outMs < 1000, `out within a second: ${outMs} ms`);
    assert.deepEqual({ roomId: raw.kicked[0]?.roomId, code: raw.kicked[0]?.code }, { roomId, code: 'banned' });
    assert.match(raw.kicked[0]?.message ?? '', /banned/);
    assert.equal(sdkErrors[0]?.code, 'banned');
    assert.equal(bili.blocks.length, 1);
    assert.ok(raw.socket.connected, 'the socket itself stays (it may sit in other rooms)');

    await sendComments(system.url, roomId, 3, 'after');
    await waitFor('the others keep receiving, on both connectors', () => [friend.texts, anon.texts, biliFriend.texts, friendElsewhere.texts].every((t) => t.length === 5));
    // Both connectors have sent the room its comments. A sentinel in another room, sent after that,
    // on each banned socket's own connection: had the room's comments gone to it, they came first.
    // (The SDK and the Bilibili connection closed when told, so nothing can reach them.)
    const probeRoom = uniqueRoom('probe');
    const probes = await Promise.all(
      [raw.socket, elsewhere.socket].map(async (socket) => {
        const got: string[] = [];
        socket.on('messages', (p: { roomId: string; messages: { content?: string }[] }) => {
          if (p.roomId === probeRoom) for (const m of p.messages) got.push(m.content ?? '');
        });
        const ack = (await socket.timeout(5000).emitWithAck('join', { roomId: probeRoom, types: ['comment'] })) as JoinAck;
        assert.ok(ack.ok, JSON.stringify(ack));
        return got;
      }),
    );
    await sendComments(system.url, probeRoom, 1, 'sentinel');
    await waitFor('the sentinel on both banned sockets', () => probes.every((got) => got.includes('sentinel 0')));
    assert.deepEqual(raw.texts, ['before 0', 'before 1']);
    assert.deepEqual(elsewhere.texts, ['before 0', 'before 1']);
    assert.deepEqual(bili.texts, ['before 0', 'before 1']);
    assert.deepEqual(sdkTexts, ['before 0', 'before 1']);

    // Rejoin refused while banned: socket.io ack, Bilibili auth.
    const again = (await raw.socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'] })) as JoinAck;
    assert.equal(again.ok ? '' : again.error.code, 'banned');
    // The protocol's auth packet with the user's token as key, over a raw WebSocket: refused (-101), closed.
    const ws = new WebSocket(`${system.url.replace('http', 'ws')}/sub`);
    const replies: unknown[] = [];
    ws.on('message', (data: Buffer) => replies.push(...decodeServerPackets(data).map((p) => p.json)));
    ws.on('open', () => ws.send(encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid, protover: 3, platform: 'web', type: 2, key: tokenFor('troll') }))));
    await new Promise<void>((resolve) => ws.once('close', () => resolve()));
    assert.deepEqual(replies, [{ code: -101 }]);
  });

  it('POST /kicks: streamer or admin only, in the error shape; a kick takes the user out once, they may join again', async () => {
    const roomId = uniqueRoom('kick');
    const path = `/v1/rooms/${roomId}/kicks`;
    const codeOf = async (res: Response): Promise<[number, string]> => [res.status, ((await res.json()) as { error?: { code: string } }).error?.code ?? ''];
    assert.deepEqual(await codeOf(await post(path, { userId: 'x' })), [401, 'missing_token']);
    assert.deepEqual(await codeOf(await post(path, { userId: 'x' }, tokenFor('viewer'))), [403, 'forbidden']);
    assert.deepEqual(await codeOf(await post(path, { userId: 'x' }, tokenFor('other-owner', 'streamer', ['elsewhere']))), [403, 'forbidden']);
    const owner = tokenFor('owner', 'streamer', [roomId]);
    assert.deepEqual(await codeOf(await post(path, {}, owner)), [400, 'invalid_request']);
    assert.deepEqual(await codeOf(await post(path, { userId: 'x', extra: 1 }, owner)), [400, 'invalid_request']);
    assert.deepEqual(await codeOf(await post(path, { userId: 'a\nb' }, owner)), [400, 'invalid_request']);
    assert.deepEqual(await codeOf(await post(path, { userId: 'owner' }, owner)), [400, 'invalid_request']);

    const target = await socketViewer(roomId, 'noisy');
    const bystander = await socketViewer(roomId, 'quiet');
    const t0 = Date.now();
    const res = await post(path, { userId: 'noisy' }, tokenFor('boss', 'admin'));
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { userId: 'noisy', kicked: true });
    await waitFor('kicked', () => target.kicked.length === 1, 1000, 10);
    console.log(`# kicked viewer told ${Date.now() - t0} ms after the request`);
    assert.equal(target.kicked[0]?.code, 'kicked');
    await sendComments(system.url, roomId, 2, 'later');
    await waitFor('the bystander receives', () => bystander.texts.length === 2);
    // A sentinel in another room on the kicked socket's own connection, sent after the room's
    // comments went out: had those gone to it, they came first.
    const probeRoom = uniqueRoom('probe');
    const probe: string[] = [];
    target.socket.on('messages', (p: { roomId: string; messages: { content?: string }[] }) => {
      if (p.roomId === probeRoom) for (const m of p.messages) probe.push(m.content ?? '');
    });
    const joined = (await target.socket.timeout(5000).emitWithAck('join', { roomId: probeRoom, types: ['comment'] })) as JoinAck;
    assert.ok(joined.ok, JSON.stringify(joined));
    await sendComments(system.url, probeRoom, 1, 'sentinel');
    await waitFor('the sentinel on the kicked socket', () => probe.includes('sentinel 0'));
    assert.deepEqual(target.texts, []);
    // Not a ban: the user may come back.
    const again = (await target.socket.timeout(5000).emitWithAck('join', { roomId, types: ['comment'] })) as JoinAck;
    assert.equal(again.ok, true);
  });
});
