/**
 * Bad packets on the Bilibili-protocol transport (WebSocket /sub, and raw TCP when the server
 * listens on it): broken headers, lying lengths, bad auth bodies, packets before auth, repeated
 * auth, heartbeats with garbage, compression bombs, text and oversized frames. The protocol has
 * two ways to say no: an auth reply with a non-zero code, or closing that connection. A
 * well-formed client sits in a room the whole time and must still get a comment sent at the end,
 * and the server's open-session gauge must come back to that one client (nothing leaked).
 */
import { connect } from 'node:net';
import { brotliCompressSync, deflateSync } from 'node:zlib';
import { WebSocket } from 'ws';
import { HEADER_LENGTH, MAX_SERVER_PACKET, Op, PacketStream, Ver, decodeServerPackets, encodePacket, type Packet } from '@danmaku/bilibili';
import { createAuth } from '@danmaku/auth';
import { testConfig, tokenFor, waitFor } from '@danmaku/testkit';
import type { ClassCounts } from './counts.js';
import { chance, int, nastyString, pick, type Rng } from './gen.js';

/** What the server must do with a case: close it; refuse its auth (or close); answer the auth either way; answer a heartbeat. */
type Expect = 'close' | 'refuse' | 'any' | 'heartbeat';

interface Case {
  what: string;
  /** WebSocket frames (a string is a text frame); on TCP their bytes are written one after another. */
  frames: (Buffer | string)[];
  expect: Expect;
}

/** A packet with every header field settable, lies included. */
function raw(op: number, ver: number, body: Buffer | string, lie: { length?: number; headerLength?: number; seq?: number } = {}): Buffer {
  const payload = typeof body === 'string' ? Buffer.from(body) : body;
  const packet = Buffer.alloc(HEADER_LENGTH + payload.length);
  packet.writeUInt32BE((lie.length ?? HEADER_LENGTH + payload.length) >>> 0, 0);
  packet.writeUInt16BE((lie.headerLength ?? HEADER_LENGTH) & 0xffff, 4);
  packet.writeUInt16BE(ver & 0xffff, 6);
  packet.writeUInt32BE(op >>> 0, 8);
  packet.writeUInt32BE((lie.seq ?? 1) >>> 0, 12);
  payload.copy(packet, HEADER_LENGTH);
  return packet;
}

const authBody = (roomid: unknown, extra: Record<string, unknown> = {}): string => JSON.stringify({ uid: 0, roomid, protover: 3, platform: 'web', type: 2, ...extra });
const auth = (roomid: unknown, extra: Record<string, unknown> = {}): Buffer => encodePacket(Op.AUTH, Ver.BINARY, authBody(roomid, extra));
const heartbeat = (body: Buffer | string = '[object Object]'): Buffer => encodePacket(Op.HEARTBEAT, Ver.BINARY, body);
const bytes = (r: Rng, min: number, max: number): Buffer => Buffer.from(Array.from({ length: int(r, min, max) }, () => int(r, 0, 255)));

/** 1 MB of zeros, compressed to about a kilobyte: a server that inflated client bodies would pay for it. */
const ZERO_MB = Buffer.alloc(1 << 20);
const ZLIB_BOMB = deflateSync(ZERO_MB);
const BROTLI_BOMB = brotliCompressSync(ZERO_MB);

function bilibiliCase(r: Rng, room: number, tokens: string[], onTcp: boolean): Case {
  const good = auth(room);
  const kind = int(r, 0, 21);
  switch (kind) {
    case 0:
      return { what: 'header length not 16', frames: [raw(Op.AUTH, Ver.BINARY, authBody(room), { headerLength: pick(r, [0, 1, 15, 17, 32, 0xffff]) })], expect: 'close' };
    case 1:
      return { what: 'length shorter than the header', frames: [raw(Op.AUTH, Ver.BINARY, authBody(room), { length: int(r, 0, 15) })], expect: 'close' };
    case 2: {
      // Shorter than the packet, but not than the header: the rest is a second, broken packet.
      const body = authBody(room);
      return { what: 'length lying short', frames: [raw(Op.AUTH, Ver.BINARY, body, { length: int(r, 16, 16 + body.length - 1) })], expect: 'close' };
    }
    case 3: {
      const body = authBody(room);
      return { what: 'length lying long', frames: [raw(Op.AUTH, Ver.BINARY, body, { length: 16 + body.length + int(r, 1, 2000) })], expect: 'close' };
    }
    case 4:
      return { what: 'huge length', frames: [raw(Op.AUTH, Ver.BINARY, authBody(room), { length: pick(r, [16 * 1024 + 1, 1 << 24, 0x7fffffff, 0xffffffff]) })], expect: 'close' };
    case 5:
      return { what: 'unknown op first', frames: [raw(pick(r, [0, 1, 3, 4, 5, 6, 8, 9, 1000, 0xffffffff]), Ver.BINARY, authBody(room))], expect: 'close' };
    case 6:
      // The server never looks at a client packet's ver: an auth with any ver is an auth.
      return { what: 'unknown ver on a good auth', frames: [raw(Op.AUTH, pick(r, [0, 2, 3, 4, 99, 0xffff]), authBody(room, { protover: pick(r, [0, 1, 2, 3, 4, -1, 99, '3', null]) }))], expect: 'any' };
    case 7: {
      // A cut frame fails at once on WebSocket; on TCP the server waits for the rest, then the auth deadline closes it.
      return { what: 'truncated packet', frames: [good.subarray(0, int(r, 1, good.length - 1))], expect: 'close' };
    }
    case 8:
      return { what: 'zero-length frame, then an auth', frames: [Buffer.alloc(0), good], expect: 'any' };
    case 9:
      return {
        what: 'auth body not JSON',
        frames: [encodePacket(Op.AUTH, Ver.BINARY, pick(r, ['', '{', 'null', '[]', '"x"', '42', '\u0000\u0001', nastyString(r, 60), '{"roomid":1', '\ufeff{"roomid":1}']))],
        expect: 'refuse',
      };
    case 10: {
      const roomid = pick<unknown>(r, [null, true, -1, 1.5, 'abc', '', '-5', '1e3', [room], { room }, 2 ** 53, 1e308, Number.NaN, ' 12']);
      return { what: 'roomid of a wrong type', frames: [auth(roomid)], expect: 'refuse' };
    }
    case 11: {
      const fields: Record<string, unknown> = { uid: pick(r, [0, 'x', null, -1]), protover: pick(r, [3, 'x', null]) };
      return { what: 'auth without roomid', frames: [encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify(fields))], expect: 'refuse' };
    }
    case 12:
      // Any number is a room (the room whose id it is), and a key that is not ours is anonymous: accepted or refused, never a crash.
      return {
        what: 'unknown room / bad key',
        frames: [auth(pick<unknown>(r, [int(r, 0, 2_000_000_000), 0, 1, String(int(r, 1, 1e9)), room]), { key: pick(r, tokens), uid: pick<unknown>(r, [0, 'x', -1, 1e308, null]), buvid: nastyString(r, 30) })],
        expect: 'any',
      };
    case 13:
      return { what: 'heartbeat before auth', frames: [heartbeat(), good], expect: 'close' };
    case 14:
      return { what: 'message op before auth', frames: [encodePacket(Op.MESSAGE, Ver.JSON, '{"cmd":"DANMU_MSG","info":[]}'), good], expect: 'close' };
    case 15:
      // Sent together: the second auth reaches the server while the first is still being checked.
      return { what: 'repeated auth', frames: chance(r, 0.5) ? [Buffer.concat([good, good])] : [good, auth(room + 1)], expect: 'close' };
    case 16: {
      const garbage = pick(r, [Buffer.alloc(0), bytes(r, 1, 300), Buffer.from(nastyString(r, 100)), Buffer.alloc(4000, 0xff)]);
      const ver = pick(r, [Ver.BINARY, Ver.JSON, Ver.ZLIB, Ver.BROTLI, 77]);
      const beats = Array.from({ length: int(r, 1, 20) }, () => raw(Op.HEARTBEAT, ver, garbage, { seq: int(r, 0, 0xffffffff) }));
      return { what: 'heartbeats with garbage', frames: [good, chance(r, 0.5) ? Buffer.concat(beats) : (beats[0] as Buffer)], expect: 'heartbeat' };
    }
    case 17: {
      const body = pick(r, [ZLIB_BOMB, BROTLI_BOMB, bytes(r, 1, 200), deflateSync(authBody(room)).subarray(0, 10)]);
      if (chance(r, 0.5)) return { what: 'compressed auth body (bomb or corrupt)', frames: [raw(Op.AUTH, pick(r, [Ver.ZLIB, Ver.BROTLI]), body)], expect: 'refuse' };
      return { what: 'compressed message after auth (bomb or corrupt)', frames: [good, raw(Op.MESSAGE, pick(r, [Ver.ZLIB, Ver.BROTLI]), body)], expect: 'close' };
    }
    case 18:
      // Even a text frame holding a whole good auth packet: the protocol is binary frames.
      return { what: 'text frame', frames: [pick(r, [authBody(room), ...(onTcp ? [] : [good.toString('latin1')]), nastyString(r, 200), 'x'.repeat(int(r, 16, 100))])], expect: 'close' };
    case 19:
      // Over 16 KiB: refused whole (a WebSocket frame over the limit closes with 1009; on TCP the header's length is over it).
      return { what: 'oversized frame', frames: [chance(r, 0.5) ? encodePacket(Op.AUTH, Ver.BINARY, authBody(room, { key: 'k'.repeat(int(r, 16_400, 70_000)) })) : Buffer.alloc(int(r, 16_400, 200_000), 7)], expect: 'close' };
    case 20:
      return { what: 'random bytes', frames: [bytes(r, 16, 600)], expect: 'close' };
    default: {
      // Good packets first, then one bad one: only this connection closes.
      // (A few stray bytes on TCP are the start of a packet still to come, so they are a WebSocket case only.)
      const bad = pick(r, [raw(Op.AUTH, Ver.BINARY, 'x', { headerLength: 12 }), raw(9, Ver.BINARY, ''), ...(onTcp ? [] : [bytes(r, 1, 15)])]);
      return { what: 'auth, heartbeat, then a bad packet', frames: [good, heartbeat(), bad], expect: 'close' };
    }
  }
}

interface Outcome {
  closed: boolean;
  /** Auth reply codes, in order. */
  authCodes: number[];
  heartbeats: number;
  /** A server packet that did not decode: the server broke the protocol itself. */
  undecodable: string | null;
}

/** Runs a case on one connection; resolves when the server closed it, the case got its answer, or after the deadline. */
function runCase(target: { ws: string } | { tcpPort: number }, c: Case, deadlineMs: number): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { closed: false, authCodes: [], heartbeats: 0, undecodable: null };
    let done = false;
    let stop = (): void => undefined;
    const settled = (): boolean => {
      if (outcome.closed || outcome.undecodable) return true;
      // 'close' cases wait for the close itself.
      if (c.expect === 'refuse' || c.expect === 'any') return outcome.authCodes.length > 0;
      if (c.expect === 'heartbeat') return outcome.heartbeats > 0 || outcome.authCodes.some((code) => code !== 0);
      return false;
    };
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      stop();
      resolve(outcome);
    };
    const timer = setTimeout(finish, deadlineMs);
    const seen = (packets: Packet[]): void => {
      for (const packet of packets) {
        if (packet.op === Op.AUTH_REPLY) {
          const code = (JSON.parse(packet.body.toString('utf8')) as { code?: unknown }).code;
          outcome.authCodes.push(typeof code === 'number' ? code : Number.NaN);
        } else if (packet.op === Op.HEARTBEAT_REPLY) outcome.heartbeats++;
      }
      if (settled()) finish();
    };
    const broken = (err: unknown): void => {
      outcome.undecodable = (err as Error).message;
      finish();
    };
    if ('ws' in target) {
      const ws = new WebSocket(target.ws, { perMessageDeflate: false });
      stop = () => ws.terminate();
      ws.on('error', () => undefined);
      ws.on('open', () => {
        for (const frame of c.frames) ws.send(frame, { binary: typeof frame !== 'string' });
      });
      ws.on('message', (data: Buffer) => {
        try {
          seen(decodeServerPackets(data));
        } catch (err) {
          broken(err);
        }
      });
      ws.on('close', () => {
        outcome.closed = true;
        finish();
      });
    } else {
      const socket = connect(target.tcpPort, '127.0.0.1');
      const stream = new PacketStream(MAX_SERVER_PACKET);
      stop = () => socket.destroy();
      socket.on('error', () => undefined);
      socket.on('connect', () => {
        // A text frame is its bytes on TCP.
        socket.write(Buffer.concat(c.frames.map((f) => (typeof f === 'string' ? Buffer.from(f) : f))));
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          seen(stream.push(chunk).flatMap((p) => decodeServerPackets(encodePacket(p.op, p.ver, p.body, p.seq))));
        } catch (err) {
          broken(err);
        }
      });
      socket.on('close', () => {
        outcome.closed = true;
        finish();
      });
    }
  });
}

/** Is the outcome what the protocol says for this case? A reason when not. */
function judge(c: Case, o: Outcome): { ok: boolean; refused: boolean; why?: string } {
  if (o.undecodable) return { ok: false, refused: false, why: `undecodable server packet: ${o.undecodable}` };
  const refused = o.closed || o.authCodes.some((code) => code !== 0);
  switch (c.expect) {
    case 'close':
      return o.closed ? { ok: true, refused: true } : { ok: false, refused, why: 'left open' };
    case 'refuse':
      if (o.authCodes.includes(0)) return { ok: false, refused, why: 'auth accepted' };
      return refused ? { ok: true, refused } : { ok: false, refused, why: 'no answer' };
    case 'any':
      return o.closed || o.authCodes.length > 0 ? { ok: true, refused } : { ok: false, refused, why: 'no answer' };
    case 'heartbeat':
      return o.heartbeats > 0 || refused ? { ok: true, refused } : { ok: false, refused, why: 'no heartbeat reply' };
  }
}

/** The well-formed client kept open through the class: raw WebSocket, protover 2, as the libraries do it. */
async function watcher(wsUrl: string, room: number): Promise<{ comments: string[]; close(): void; beat(): void }> {
  const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
  const comments: string[] = [];
  let authed = false;
  ws.on('error', () => undefined);
  ws.on('message', (data: Buffer) => {
    for (const packet of decodeServerPackets(data)) {
      if (packet.op === Op.AUTH_REPLY) authed = (packet as { json?: { code?: number } }).json?.code === 0;
      const json = (packet as { json?: { cmd?: string; info?: unknown[] } }).json;
      if (json?.cmd === 'DANMU_MSG') comments.push(String(json.info?.[1]));
    }
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.send(encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid: room, protover: 2, platform: 'web', type: 2 })));
  await waitFor('the watcher to be accepted', () => authed, 10_000);
  return { comments, close: () => ws.close(), beat: () => ws.send(heartbeat()) };
}

async function bilibiliSessions(base: URL): Promise<number> {
  const text = await (await fetch(`${base.origin}/metrics`)).text();
  return Number(/^danmaku_connector_sessions\{transport="bilibili"\} (\d+)/m.exec(text)?.[1] ?? Number.NaN);
}

export async function bilibiliFuzz(base: URL, r: Rng, n: number, counts: ClassCounts, tcpPort?: number): Promise<void> {
  const wsUrl = `ws://${base.host}/sub`;
  const room = int(r, 100_000_000, 1_999_999_999);
  const admin = tokenFor('fz-bili-admin', 'admin');
  // Earlier classes flip global switches at random (read-only rooms among them): back to normal first.
  await fetch(`${base.origin}/v1/admin/switches`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ readOnlyRooms: [], forcePolling: false }),
  });
  const config = testConfig();
  const tokens = [
    tokenFor('fz-bili'),
    createAuth('not-this-servers-secret').sign({ sub: 'fz', name: 'fz', role: 'admin' }),
    createAuth(config.jwtSecret).sign({ sub: 'fz-old', name: 'old', role: 'viewer' }, -60),
    'a.b.c',
    '',
    'x'.repeat(500),
  ];
  const watch = await watcher(wsUrl, room);
  let issued = 0;
  const worker = async (): Promise<void> => {
    while (issued < n) {
      issued++;
      const onTcp = tcpPort !== undefined && chance(r, 0.3);
      const c = bilibiliCase(r, room, tokens, onTcp);
      counts.requests++;
      // The auth deadline (5 s) closes connections that never finish a packet.
      const o = await runCase(onTcp ? { tcpPort } : { ws: wsUrl }, c, 8000);
      const verdict = judge(c, o);
      if (!o.closed && o.authCodes.length === 0 && o.heartbeats === 0 && !o.undecodable) counts.noAnswer++;
      else counts.answers++;
      if (verdict.ok) {
        counts.inShape++;
        if (verdict.refused) counts.client4xx++;
        else counts.ok2xx++;
      } else {
        counts.outOfShape++;
        if (counts.samples.length < 5) counts.samples.push(`${verdict.why} (${onTcp ? 'tcp' : 'ws'}): ${c.what}`);
      }
      if (issued % 50 === 0) watch.beat();
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  // The well-formed client still gets a comment, and every bad connection is gone.
  const content = `fz-bili-${room}`;
  const res = await fetch(`${base.origin}/v1/rooms/${room}/messages`, {
    method: 'POST',
    headers: { authorization: `Bearer ${tokenFor('fz-bili-sender')}`, 'content-type': 'application/json' },
    body: JSON.stringify({ type: 'comment', content }),
  });
  if (res.status !== 202) {
    counts.outOfShape++;
    counts.samples.push(`the comment to the watcher's room answered ${res.status}: ${(await res.text()).slice(0, 160)}`);
  } else {
    await waitFor('the well-formed client to get the comment', () => watch.comments.includes(content), 10_000).catch(() => {
      counts.outOfShape++;
      counts.samples.push('the well-formed client did not get the comment sent after the fuzzing');
    });
  }
  await waitFor('bad Bilibili connections to be gone', async () => (await bilibiliSessions(base)) === 1, 10_000).catch(async () => {
    counts.outOfShape++;
    counts.samples.push(`open Bilibili sessions after the class: ${await bilibiliSessions(base)} (expected 1, the watcher)`);
  });
  watch.close();
}
