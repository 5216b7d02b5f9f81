/**
 * The Bilibili live protocol on the connector, driven by a third-party client library from npm
 * (bilibili-live-ws, used unchanged and only pointed at this server): WebSocket with protover 3
 * and 2, raw TCP; every kind of room event; aliases; and bad packets closing only their own
 * connection.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import type { EventEmitter } from 'node:events';
import { deflateSync } from 'node:zlib';
import { randomInt } from 'node:crypto';
import WebSocket from 'ws';
import { LiveTCP, LiveWS } from 'bilibili-live-ws';
import { Op, Ver, decodeServerPackets, encodePacket } from '@danmaku/bilibili';
import { createLogger } from '@danmaku/observability';
import { startStandalone, type Standalone } from '@danmaku/standalone';
import { freePort, testConfig, tokenFor, uniqueRoom, waitFor } from '@danmaku/testkit';

type Live = LiveWS | LiveTCP;
interface Seen {
  welcome: boolean;
  closed: boolean;
  heartbeats: number[];
  cmds: Map<string, unknown[]>;
}

/** Records everything a client library emits. */
function watch(live: Live): Seen {
  const seen: Seen = { welcome: false, closed: false, heartbeats: [], cmds: new Map() };
  live.on('live', () => (seen.welcome = true));
  live.on('heartbeat', (online: number) => seen.heartbeats.push(online));
  live.on('close', () => (seen.closed = true));
  live.on('error', () => undefined);
  live.on('msg', (data: { cmd: string }) => {
    // The library's own dispatch: every cmd containing DANMU_MSG is a comment.
    const cmd = data.cmd.includes('DANMU_MSG') ? 'DANMU_MSG' : data.cmd;
    const list = seen.cmds.get(cmd) ?? [];
    list.push(data);
    seen.cmds.set(cmd, list);
  });
  return seen;
}

const randomRoomid = (): number => randomInt(100_000_000, 2_000_000_000);

describe('Bilibili live protocol', () => {
  const cluster = uniqueRoom('cluster');
  let system: Standalone;
  let tcpPort: number;
  let wsAddress: string;
  const lives: Live[] = [];

  before(async () => {
    tcpPort = await freePort();
    const config = testConfig({ cluster, rateUserMax: 1_000_000, rateIpMax: 1_000_000, anonViewers: true, pushMergeMs: 20, roomInfoMs: 300, biliTcpPort: tcpPort });
    system = await startStandalone(config, createLogger('test', 'silent'));
    wsAddress = `${system.url.replace('http', 'ws')}/sub`;
  });
  after(async () => {
    for (const live of lives) live.close();
    await system.stop();
  });

  const open = <T extends Live>(live: T): T => {
    lives.push(live);
    return live;
  };

  async function post(path: string, body: unknown, token: string, method = 'POST'): Promise<Response> {
    return fetch(`${system.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  }

  it('serves the library over WebSocket (protover 3 and 2) and TCP: comments, gifts, enters, likes, online, live start/end, heartbeats', async () => {
    const roomid = randomRoomid();
    const roomId = String(roomid);
    const clients = [
      open(new LiveWS(roomid, { address: wsAddress, protover: 3 })),
      open(new LiveWS(roomid, { address: wsAddress, protover: 2 })),
      open(new LiveTCP(roomid, { host: '127.0.0.1', port: tcpPort, protover: 3 })),
      open(new LiveTCP(roomid, { host: '127.0.0.1', port: tcpPort, protover: 2 })),
    ];
    const seen = clients.map(watch);
    await waitFor('every client authenticated', () => seen.every((s) => s.welcome), 10_000);
    // The library sends a heartbeat as soon as it is welcomed; the reply is the online count.
    await waitFor('heartbeat replies', () => seen.every((s) => s.heartbeats.length > 0), 10_000);
    // (Each counts at least itself; the room fills up while the four connect.)
    assert.ok(seen.every((s) => s.heartbeats.every((n) => Number.isInteger(n) && n >= 1)), `online counts ${JSON.stringify(seen.map((s) => s.heartbeats))}`);

    const viewer = tokenFor('bili-sender');
    const styled = await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: '红色置顶 hello', color: '#FF0000', mode: 'top' }, viewer);
    assert.equal(styled.status, 202, await styled.clone().text());
    assert.equal((await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: 'plain' }, viewer)).status, 202);
    assert.equal((await post(`/v1/rooms/${roomId}/messages`, { type: 'gift', giftId: 'rose', count: 3 }, viewer)).status, 202);
    assert.equal((await post(`/v1/rooms/${roomId}/enter`, {}, tokenFor('bili-enterer'))).status, 200);
    assert.equal((await post(`/v1/rooms/${roomId}/likes`, { count: 7 }, viewer)).status, 202);
    const streamer = tokenFor('bili-streamer', 'streamer', [roomId]);
    const started = await post(`/v1/rooms/${roomId}/lives`, {}, streamer);
    assert.equal(started.status, 201, await started.clone().text());
    const live = (await started.json()) as { liveId: string; startedAt: number };
    await waitFor('LIVE reaches every client', () => seen.every((s) => s.cmds.has('LIVE')), 10_000);
    assert.equal((await post(`/v1/rooms/${roomId}/lives/${live.liveId}/end`, {}, streamer)).status, 200);

    const has = (s: Seen, cmd: string, n = 1): boolean => (s.cmds.get(cmd)?.length ?? 0) >= n;
    await waitFor(
      'every kind of event on every client',
      () => seen.every((s) => has(s, 'DANMU_MSG', 2) && has(s, 'SEND_GIFT') && has(s, 'INTERACT_WORD') && has(s, 'PREPARING') && has(s, 'ONLINE_RANK_COUNT') && has(s, 'WATCHED_CHANGE') && (s.cmds.get('LIKE_INFO_V3_UPDATE') ?? []).some((b) => (b as { data: { click_count: number } }).data.click_count === 7)),
      15_000,
    );
    for (const [i, s] of seen.entries()) {
      const who = `client ${i}`;
      const [first, second] = s.cmds.get('DANMU_MSG') as Array<{ info: unknown[] }>;
      const info0 = first?.info[0] as unknown[];
      assert.equal(first?.info[1], '红色置顶 hello', who);
      assert.equal((first?.info[2] as unknown[])[1], 'name-bili-sender', `${who}: user name`);
      assert.equal(info0[3], 0xff0000, `${who}: colour as decimal RGB`);
      assert.equal(info0[1], 5, `${who}: top = mode 5`);
      assert.equal((second?.info[0] as unknown[])[1], 1, `${who}: scroll = mode 1`);
      assert.equal((second?.info[0] as unknown[])[3], 0xffffff, `${who}: default white`);
      const gift = (s.cmds.get('SEND_GIFT') as Array<{ data: { giftName: string; num: number; uname: string } }>)[0];
      assert.deepEqual([gift?.data.giftName, gift?.data.num, gift?.data.uname], ['rose', 3, 'name-bili-sender'], who);
      const enter = (s.cmds.get('INTERACT_WORD') as Array<{ data: { uname: string; msg_type: number } }>)[0];
      assert.deepEqual([enter?.data.uname, enter?.data.msg_type], ['name-bili-enterer', 1], who);
      const liveCmd = (s.cmds.get('LIVE') as Array<{ roomid: number; live_time: number }>)[0];
      assert.deepEqual([liveCmd?.roomid, liveCmd?.live_time], [roomid, Math.floor(live.startedAt / 1000)], who);
      assert.equal((s.cmds.get('PREPARING') as Array<{ roomid: string }>)[0]?.roomid, roomId, `${who}: PREPARING roomid is a string`);
      const count = (s.cmds.get('ONLINE_RANK_COUNT') as Array<{ data: { count: number } }>).at(-1);
      assert.ok((count?.data.count ?? 0) >= 4, `${who}: online count ${JSON.stringify(count)}`);
      const watched = (s.cmds.get('WATCHED_CHANGE') as Array<{ data: { num: number; text_small: string; text_large: string } }>).at(-1);
      assert.equal(typeof watched?.data.text_large, 'string', who);
    }
    // The same comment went out once per client, never twice.
    assert.ok(seen.every((s) => s.cmds.get('DANMU_MSG')?.length === 2));

    // A pinned notice, and a moderator's delete (under a cmd the library does not take for a comment).
    assert.equal((await post(`/v1/rooms/${roomId}/notice`, { content: 'welcome, bilibili tools' }, streamer)).status, 201);
    const doomed = (await (await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: 'to be deleted' }, viewer)).json()) as { id: string };
    await waitFor('the doomed comment arrives', () => seen.every((s) => s.cmds.get('DANMU_MSG')?.length === 3));
    const del = await fetch(`${system.url}/v1/rooms/${roomId}/messages/${doomed.id}?type=comment`, { method: 'DELETE', headers: { authorization: `Bearer ${streamer}` } });
    assert.equal(del.status, 200, await del.text());
    await waitFor('notice and deletion on every client', () =>
      seen.every(
        (s) =>
          (s.cmds.get('NOTICE_MSG') ?? []).some((b) => (b as { msg_common: string }).msg_common === 'welcome, bilibili tools') &&
          (s.cmds.get('DANMAKU_DELETE') ?? []).some((b) => (b as { data: { ids: string[] } }).data.ids.includes(doomed.id)),
      ),
    );
    assert.ok(seen.every((s) => s.cmds.get('DANMU_MSG')?.length === 3), 'a deletion is not taken for a comment');
    // A heartbeat later in the connection gets its reply too.
    const beats = seen[0]?.heartbeats.length ?? 0;
    (clients[0] as LiveWS).heartbeat();
    await waitFor('a second heartbeat reply', () => (seen[0]?.heartbeats.length ?? 0) > beats);
    assert.ok((seen[0]?.heartbeats.at(-1) ?? 0) >= 4, 'the reply counts the four clients now in the room');
  });

  it('treats a key that is one of our tokens as that user, and connects without key or buvid', async () => {
    const roomid = randomRoomid();
    const keyed = open(new LiveWS(roomid, { address: wsAddress, protover: 3, key: tokenFor('bili-keyed'), buvid: 'whatever' }));
    const foreign = open(new LiveWS(roomid, { address: wsAddress, protover: 3, key: 'a-key-from-bilibili-not-ours' }));
    const [a, b] = [watch(keyed), watch(foreign)];
    await waitFor('both welcomed', () => a.welcome && b.welcome);
    await waitFor('the keyed viewer is in the room', async () => {
      const users = (await (await fetch(`${system.url}/v1/rooms/${roomid}/users`)).json()) as { users: Array<{ id: string }> };
      return users.users.some((u) => u.id === 'bili-keyed');
    });
  });

  it('lets a streamer give a room a numeric alias that Bilibili clients join by', async () => {
    const roomId = uniqueRoom('alias');
    const alias = randomRoomid();
    const streamer = tokenFor('alias-streamer', 'streamer', [roomId]);
    assert.equal((await post(`/v1/rooms/${roomId}/alias`, { alias }, tokenFor('alias-viewer'), 'PUT')).status, 403);
    assert.equal((await post(`/v1/rooms/${roomId}/alias`, { alias: 'x' }, streamer, 'PUT')).status, 400);
    const set = await post(`/v1/rooms/${roomId}/alias`, { alias }, streamer, 'PUT');
    assert.equal(set.status, 200, await set.clone().text());
    assert.deepEqual(await set.json(), { roomId, alias });
    const info = (await (await fetch(`${system.url}/v1/rooms/${roomId}`)).json()) as { alias: number | null };
    assert.equal(info.alias, alias);
    const other = uniqueRoom('alias-other');
    const taken = await post(`/v1/rooms/${other}/alias`, { alias }, tokenFor('s2', 'streamer', [other]), 'PUT');
    assert.equal(taken.status, 409);
    assert.equal(((await taken.json()) as { error: { code: string } }).error.code, 'alias_taken');

    const client = open(new LiveTCP(alias, { host: '127.0.0.1', port: tcpPort }));
    const seen = watch(client);
    await waitFor('welcomed', () => seen.welcome);
    assert.equal((await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: 'via alias' }, tokenFor('alias-sender'))).status, 202);
    await waitFor('the comment arrives through the alias', () => (seen.cmds.get('DANMU_MSG') ?? []).some((d) => (d as { info: unknown[] }).info[1] === 'via alias'));
  });

  it('closes only the connection that sends a bad packet; the process and other clients go on', async () => {
    const roomid = randomRoomid();
    const healthy = open(new LiveWS(roomid, { address: wsAddress, protover: 2 }));
    const seen = watch(healthy);
    await waitFor('healthy client welcomed', () => seen.welcome);

    const auth = encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid, protover: 2, platform: 'web', type: 2 }));
    const header = (length: number, headerLength = 16, op: number = Op.AUTH): Buffer => {
      const h = Buffer.alloc(16);
      h.writeUInt32BE(length, 0);
      h.writeUInt16BE(headerLength, 4);
      h.writeUInt16BE(1, 6);
      h.writeUInt32BE(op, 8);
      h.writeUInt32BE(1, 12);
      return h;
    };
    const zipped = deflateSync(Buffer.from('{"roomid":1,"protover":2}'));
    const badInputs: Array<[string, Buffer[]]> = [
      ['length past the end of the frame', [Buffer.concat([header(100), Buffer.from('{"roomid":1}')])]],
      ['length shorter than a header', [header(8)]],
      ['header length not 16', [header(16, 12)]],
      ['a 2 GB length', [header(2 ** 31)]],
      ['a length over the sane size', [header(1 << 20)]],
      ['garbage before auth', [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')]],
      ['a heartbeat before auth', [encodePacket(Op.HEARTBEAT, Ver.BINARY)]],
      ['a truncated compressed auth body', [encodePacket(Op.AUTH, Ver.ZLIB, zipped.subarray(0, zipped.length - 5))]],
      ['a truncated compressed packet after auth', [auth, encodePacket(Op.MESSAGE, Ver.BROTLI, Buffer.from([0x8b, 0x02, 0x80]))]],
      ['a second auth', [auth, auth]],
      ['a room id that is not a number', [encodePacket(Op.AUTH, Ver.BINARY, '{"roomid":"abc"}')]],
    ];

    /**
     * Sends `chunks` once `connection` is open; resolves when the server closes it. Errors are
     * expected (the server cuts the connection), so only a missing close fails.
     */
    const untilClosed = (connection: EventEmitter, openEvent: string, write: (chunk: Buffer) => void, chunks: Buffer[]): Promise<void> =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('not closed within 10 s')), 10_000);
        connection.on('error', () => undefined);
        connection.on('close', () => {
          clearTimeout(timer);
          resolve();
        });
        connection.on(openEvent, () => {
          for (const chunk of chunks) write(chunk);
        });
      });
    /** Over a raw TCP connection. */
    const tcpCase = (chunks: Buffer[]): Promise<void> => {
      const socket: TcpSocket = tcpConnect(tcpPort, '127.0.0.1');
      // Read what comes (an auth refusal): unread data would hold back the 'end' and 'close'.
      socket.on('data', () => undefined);
      return untilClosed(socket, 'connect', (chunk) => socket.write(chunk), chunks);
    };
    /** The same over WebSocket: each chunk a binary frame. */
    const wsCase = (chunks: Buffer[]): Promise<void> => {
      const ws = new WebSocket(wsAddress);
      return untilClosed(ws, 'open', (chunk) => ws.send(chunk), chunks);
    };

    for (const [what, chunks] of badInputs) {
      await tcpCase(chunks).catch((err: Error) => assert.fail(`TCP, ${what}: ${err.message}`));
      await wsCase(chunks).catch((err: Error) => assert.fail(`WebSocket, ${what}: ${err.message}`));
    }
    // A frame far over the limit is refused by the WebSocket layer itself.
    await wsCase([Buffer.alloc(1 << 20)]);
    // TCP: a 2 GB length announced one byte at a time.
    await tcpCase([...header(2 ** 31)].map((b) => Buffer.from([b])));

    // No auth within 5 s: closed (allow slack for a loaded machine, but it must close on its own).
    const silentStart = Date.now();
    await Promise.all([tcpCase([]), wsCase([])]);
    assert.ok(Date.now() - silentStart >= 4500, 'not before the 5 s are up');

    assert.equal(seen.closed, false, 'the healthy client is still connected');
    assert.equal((await post(`/v1/rooms/${roomid}/messages`, { type: 'comment', content: 'still here' }, tokenFor('bad-packets'))).status, 202);
    await waitFor('the healthy client still receives', () => (seen.cmds.get('DANMU_MSG') ?? []).some((d) => (d as { info: unknown[] }).info[1] === 'still here'));
    assert.equal((await fetch(`${system.url}/healthz`)).status, 200);
  });

  it('reads TCP packets split anywhere over chunks, and packets sharing a chunk', async () => {
    const roomid = randomRoomid();
    const socket: TcpSocket = tcpConnect(tcpPort, '127.0.0.1');
    let received: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => (received = Buffer.concat([received, chunk])));
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('connect', resolve));
    /** The server's whole packets so far. */
    const packets = () => {
      let end = 0;
      while (received.length - end >= 16 && received.readUInt32BE(end) <= received.length - end) end += received.readUInt32BE(end);
      return decodeServerPackets(received.subarray(0, end));
    };
    try {
      // The auth packet one byte at a time: the server keeps the partial packet between chunks.
      const auth = encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid, protover: 3, type: 2 }));
      for (const byte of auth) {
        socket.write(Buffer.from([byte]));
        await new Promise((r) => setImmediate(r));
      }
      await waitFor('the auth reply', () => packets().some((p) => p.op === Op.AUTH_REPLY));
      assert.deepEqual(packets().find((p) => p.op === Op.AUTH_REPLY)?.json, { code: 0 });
      // Two heartbeats and the head of a third in one chunk, its rest in the next.
      const beat = encodePacket(Op.HEARTBEAT, Ver.BINARY);
      socket.write(Buffer.concat([beat, beat, beat.subarray(0, 5)]));
      await waitFor('two heartbeat replies', () => packets().filter((p) => p.op === Op.HEARTBEAT_REPLY).length === 2);
      socket.write(beat.subarray(5));
      await waitFor('the third heartbeat reply', () => packets().filter((p) => p.op === Op.HEARTBEAT_REPLY).length === 3);
      assert.equal(socket.destroyed, false, 'still connected');
    } finally {
      socket.destroy();
    }
  });

  it('validates comment colour and mode, and stores them (polls return them)', async () => {
    const roomId = uniqueRoom('style');
    const token = tokenFor('stylist');
    const bad = [
      { type: 'comment', content: 'x', color: 'red' },
      { type: 'comment', content: 'x', color: '#12345' },
      { type: 'comment', content: 'x', mode: 'left' },
      { type: 'gift', giftId: 'rose', color: '#FFFFFF' },
    ];
    for (const body of bad) {
      const res = await post(`/v1/rooms/${roomId}/messages`, body, token);
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'invalid_request');
    }
    assert.equal((await post(`/v1/rooms/${roomId}/messages`, { type: 'comment', content: 'styled', color: '#00ff7f', mode: 'bottom' }, token)).status, 202);
    await waitFor('stored with its style', async () => {
      const page = (await (await fetch(`${system.url}/v1/rooms/${roomId}/messages?types=comment`)).json()) as { messages: Array<{ color?: string; mode?: string }> };
      return page.messages.length === 1 && page.messages[0]?.color === '#00ff7f' && page.messages[0]?.mode === 'bottom';
    });
  });
});
