/**
 * Clients of a deployment, one per viewer, on each wire it serves: polling over HTTP, socket.io,
 * and the Bilibili live protocol on WebSocket and raw TCP. They report what arrived and when they
 * became ready; counting and timing is the caller's. Shared by the load tool and the benches.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { connect as tcpConnect } from 'node:net';
import { io, type ManagerOptions, type SocketOptions } from 'socket.io-client';
import WebSocket from 'ws';
import { HEADER_LENGTH, Op, Ver, decodeServerPackets, encodePacket } from '@danmaku/bilibili';

export const TRANSPORTS = ['poll', 'socketio', 'bilibili-ws', 'bilibili-tcp'] as const;
export type Transport = (typeof TRANSPORTS)[number];

/** One message as every wire carries it: enough to count it (room-local seq) and time it. */
export interface Received {
  id: string;
  seq: number;
  /** The server's stamp (ms). */
  ts: number;
  content?: string;
}

export interface ViewerEvents {
  /** From now on the viewer receives every new message of its room. */
  ready(): void;
  messages(list: readonly Received[]): void;
  /** The connection ended without close() (refused, dropped, timed out). */
  closed(reason: string): void;
  /** A failure the viewer outlived (a poll that failed and will be retried). */
  error(reason: string): void;
}

export interface Viewer {
  close(): void;
}

// ---------------------------------------------------------------- Bilibili live protocol

const HEARTBEAT = encodePacket(Op.HEARTBEAT, Ver.BINARY);
const biliBeats = new Set<() => void>();
// One timer for every Bilibili client of the process: they beat every 30 s or the server closes them.
setInterval(() => {
  for (const beat of biliBeats) beat();
}, 30_000).unref();

export function biliAuthPacket(roomid: number, protover: number, key?: string): Buffer {
  return encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid, protover, platform: 'web', type: 2, ...(key ? { key } : {}) }));
}

/** The comments in a server packet's DANMU_MSG bodies, as `Received`. */
function danmuMessages(packets: ReturnType<typeof decodeServerPackets>): { authCode: number | null; messages: Received[] } {
  let authCode: number | null = null;
  const messages: Received[] = [];
  for (const p of packets) {
    if (p.op === Op.AUTH_REPLY) authCode = (p.json as { code?: number }).code ?? -1;
    else if (p.op === Op.MESSAGE) {
      const body = p.json as { cmd?: string; info?: unknown[] };
      if (body.cmd !== 'DANMU_MSG' || !body.info) continue;
      const info0 = body.info[0] as unknown[];
      const extra = JSON.parse((info0[15] as { extra: string }).extra) as { danmaku: { id: string; seq: number } };
      messages.push({ id: extra.danmaku.id, seq: extra.danmaku.seq, ts: info0[4] as number, content: body.info[1] as string });
    }
  }
  return { authCode, messages };
}

/**
 * What a Bilibili client does with whole server packets: the auth reply makes it ready (and it
 * beats once at once, as the protocol's clients do), DANMU_MSG bodies are its messages.
 */
export function biliPacketReader(events: ViewerEvents, beat: () => void, refused: () => void): (whole: Buffer) => void {
  return (whole) => {
    const { authCode, messages } = danmuMessages(decodeServerPackets(whole));
    if (authCode === 0) {
      events.ready();
      beat();
    } else if (authCode !== null) refused();
    if (messages.length > 0) events.messages(messages);
  };
}

/** Cuts a TCP byte stream into runs of whole packets (by the length in each header). */
export function biliStreamCutter(onWhole: (whole: Buffer) => void): (chunk: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let end = 0;
    while (pending.length - end >= HEADER_LENGTH) {
      const length = pending.readUInt32BE(end);
      if (pending.length - end < length) break;
      end += length;
    }
    if (end === 0) return;
    onWhole(pending.subarray(0, end));
    pending = end === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(end));
  };
}

export interface BiliOptions {
  roomid: number;
  /** 3 brotli, 2 zlib, 0 plain. */
  protover: number;
  /** A token of this system: the connection is then that user (presence, bans). */
  key?: string;
  localAddress?: string;
}

/** A viewer on the Bilibili protocol over WebSocket: `url` is a connector's `ws://HOST:PORT/sub`. */
export function biliWsViewer(url: string, options: BiliOptions, events: ViewerEvents): Viewer {
  const ws = new WebSocket(url, { perMessageDeflate: false, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  let closing = false;
  const beat = (): void => {
    if (ws.readyState === WebSocket.OPEN) ws.send(HEARTBEAT);
  };
  biliBeats.add(beat);
  const read = biliPacketReader(events, beat, () => {
    closing = true;
    ws.terminate();
    events.closed('auth refused');
  });
  ws.on('open', () => ws.send(biliAuthPacket(options.roomid, options.protover, options.key)));
  ws.binaryType = 'nodebuffer';
  ws.on('message', (data: Buffer) => {
    try {
      read(data);
    } catch (err) {
      events.error(`bad packet: ${(err as Error).message}`);
    }
  });
  ws.on('error', (err) => events.error(err.message));
  ws.on('close', (code) => {
    biliBeats.delete(beat);
    if (!closing) events.closed(`closed (${code})`);
  });
  return {
    close: () => {
      closing = true;
      biliBeats.delete(beat);
      ws.terminate();
    },
  };
}

/** The same viewer on the raw TCP wire: `hostPort` as the route lists it (`host:port`). */
export function biliTcpViewer(hostPort: string, options: BiliOptions, events: ViewerEvents): Viewer {
  const at = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, at).replace(/^\[|\]$/g, '');
  const socket = tcpConnect({ port: Number(hostPort.slice(at + 1)), host, ...(options.localAddress ? { localAddress: options.localAddress } : {}) });
  socket.setNoDelay(true);
  let closing = false;
  const beat = (): void => {
    if (!socket.destroyed && socket.writable) socket.write(HEARTBEAT);
  };
  biliBeats.add(beat);
  const read = biliPacketReader(events, beat, () => {
    closing = true;
    socket.destroy();
    events.closed('auth refused');
  });
  const cut = biliStreamCutter((whole) => {
    try {
      read(whole);
    } catch (err) {
      events.error(`bad packet: ${(err as Error).message}`);
    }
  });
  socket.on('connect', () => socket.write(biliAuthPacket(options.roomid, options.protover, options.key)));
  socket.on('data', cut);
  socket.on('error', (err) => events.error(err.message));
  socket.on('close', () => {
    biliBeats.delete(beat);
    if (!closing) events.closed('closed');
  });
  return {
    close: () => {
      closing = true;
      biliBeats.delete(beat);
      socket.destroy();
    },
  };
}

// ---------------------------------------------------------------- socket.io

export interface SocketioOptions {
  roomId: string;
  token?: string;
  localAddress?: string;
  types?: string[];
}

/** A viewer on socket.io: connect (with a token when it has one), `join`, then `messages` packets. */
export function socketioViewer(url: string, options: SocketioOptions, events: ViewerEvents): Viewer {
  // engine.io-client hands `localAddress` to its WebSocket; its option types do not list it.
  const settings: Partial<ManagerOptions & SocketOptions> & { localAddress?: string } = {
    transports: ['websocket'],
    reconnection: false,
    forceNew: true,
    auth: options.token ? { token: options.token } : {},
    ...(options.localAddress ? { localAddress: options.localAddress } : {}),
  };
  const socket = io(url, settings);
  let closing = false;
  let caughtUp = false;
  socket.on('messages', (packet: { messages: Received[]; skipped?: boolean }) => {
    // A big room's sampled packet left some out on purpose: what it explains would otherwise look
    // lost. (The catch-up after a join may say skipped too: it holds only the newest messages.)
    if (packet.skipped && caughtUp) events.error('packet skipped some (sampling)');
    caughtUp = true;
    events.messages(packet.messages);
  });
  socket.on('connect', () => {
    socket.emit('join', { roomId: options.roomId, types: options.types ?? ['comment'] }, (ack: { ok: boolean; error?: { code?: string } }) => {
      if (ack?.ok) events.ready();
      else {
        closing = true;
        socket.close();
        events.closed(`join refused: ${ack?.error?.code ?? 'no ack'}`);
      }
    });
  });
  socket.on('connect_error', (err: Error & { data?: { code?: string } }) => {
    if (!closing) events.closed(`connect_error: ${err.data?.code ?? err.message}`);
    closing = true;
  });
  socket.on('disconnect', (reason) => {
    if (!closing) events.closed(`disconnect: ${reason}`);
    closing = true;
  });
  return {
    close: () => {
      closing = true;
      socket.close();
    },
  };
}

// ---------------------------------------------------------------- HTTP: polls and sends

export type AnyAgent = HttpAgent | HttpsAgent;

/** A keep-alive agent for `target`, bound to `localAddress` when given. */
export function httpAgent(target: string, localAddress?: string): AnyAgent {
  const options = { keepAlive: true, maxSockets: Infinity, ...(localAddress ? { localAddress } : {}) };
  return target.startsWith('https:') ? new HttpsAgent(options) : new HttpAgent(options);
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request through node:http (fetch cannot pick a source address without undici's own API). */
export function httpCall(url: string, agent: AnyAgent, options: { method?: string; headers?: Record<string, string>; body?: string; timeoutMs?: number } = {}): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const send = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = send(url, { method: options.method ?? 'GET', agent, headers: options.headers, timeout: options.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

export interface PollOptions {
  roomId: string;
  agent: AnyAgent;
  types?: string[];
  /** Wait before the first poll (spreads a crowd's polls over the interval). */
  firstDelayMs?: number;
}

const POLL_LIMIT = 200;

/**
 * A viewer that polls `GET /v1/rooms/:roomId/messages` as the API says: the cursor of each answer
 * on the next request, after the answer's `retryAfterMs` (at once while pages come back full).
 * Ready after its first answer: anything sent from then on is past its cursor.
 */
export function pollViewer(target: string, options: PollOptions, events: ViewerEvents): Viewer {
  let cursor = '';
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let ready = false;
  const base = `${target}/v1/rooms/${encodeURIComponent(options.roomId)}/messages?types=${(options.types ?? ['comment']).join(',')}&limit=${POLL_LIMIT}`;
  const next = (ms: number): void => {
    if (!stopped) timer = setTimeout(poll, ms);
  };
  async function poll(): Promise<void> {
    timer = null;
    let wait = 1000;
    try {
      const res = await httpCall(cursor ? `${base}&cursor=${encodeURIComponent(cursor)}` : base, options.agent);
      if (stopped) return;
      if (res.status === 200) {
        const page = JSON.parse(res.body) as { messages: Received[]; cursor: string; skipped?: boolean; retryAfterMs?: number };
        if (page.skipped && cursor) events.error('poll skipped some (thinned or past retention)');
        cursor = page.cursor;
        if (page.messages.length > 0) events.messages(page.messages);
        wait = page.messages.length >= POLL_LIMIT ? 0 : (page.retryAfterMs ?? 2000);
        if (!ready) {
          ready = true;
          events.ready();
          // A crowd that joined together would otherwise poll together forever: each takes its own phase.
          wait *= Math.random();
        }
      } else {
        events.error(`poll ${res.status}`);
        const retryAfter = Number(res.headers['retry-after']);
        if (retryAfter > 0) wait = retryAfter * 1000;
      }
    } catch (err) {
      if (stopped) return;
      events.error(`poll: ${(err as Error).message}`);
    }
    next(wait);
  }
  next(options.firstDelayMs ?? 0);
  return {
    close: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

export interface SendResult {
  status: number;
  id?: string;
  ts?: number;
  /** The error code of a refusal, or the network error. */
  error?: string;
}

/** One comment over HTTP, as a user with `token`. */
export async function sendComment(target: string, agent: AnyAgent, roomId: string, token: string, content: string): Promise<SendResult> {
  try {
    const res = await httpCall(`${target}/v1/rooms/${encodeURIComponent(roomId)}/messages`, agent, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content }),
    });
    const body = JSON.parse(res.body || '{}') as { id?: string; ts?: number; error?: { code?: string } };
    return res.status === 202 ? { status: 202, id: body.id, ts: body.ts } : { status: res.status, error: body.error?.code ?? `http_${res.status}` };
  } catch (err) {
    return { status: 0, error: (err as Error).message };
  }
}
