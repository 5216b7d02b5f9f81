/**
 * A bench client process: COUNT socket.io clients in one room. Records, per client, which seqs
 * arrived (exact duplicate and loss counts) and a latency histogram (ms, message ts -> received).
 * stdin `report MAXSEQ` prints `report {json}`; `exit` leaves.
 *
 * KIND=ours: joins through the connector protocol (`join`, `messages` packets).
 * KIND=baseline: the plain server's `join` and one `message` event per message.
 * KIND=bili: the Bilibili live protocol over WebSocket (URL is the /sub endpoint, ROOM the numeric
 * roomid, PROTOVER 3 brotli / 2 zlib / 0 plain); seq comes from the DANMU_MSG extra.
 * KIND=bili-tcp: the same protocol on its raw TCP wire (URL is `host:port`): the auth packet, then
 * heartbeats, as a Bilibili client does; server packets cut from the byte stream by their length.
 */
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { createInterface } from 'node:readline';
import { io, type Socket } from 'socket.io-client';
import WebSocket from 'ws';
import { HEADER_LENGTH, Op, Ver, decodeServerPackets, encodePacket } from '@danmaku/bilibili';

const url = process.env.URL as string;
const room = process.env.ROOM as string;
const count = Number(process.env.COUNT);
const kind = process.env.KIND as 'ours' | 'baseline' | 'bili' | 'bili-tcp';
const protover = Number(process.env.PROTOVER ?? '3');
const maxSeq = Number(process.env.MAX_SEQ);
const token = process.env.TOKEN;

interface Msg {
  seq: number;
  ts: number;
  /** `b SENT_AT_MS I`: the bench's send time, so latency covers the whole path, queues included. */
  content?: string;
}

function sentAt(m: Msg): number {
  const c = m.content;
  if (c && c.charCodeAt(0) === 98) {
    const end = c.indexOf(' ', 2);
    const t = Number(c.slice(2, end));
    if (t > 0) return t;
  }
  return m.ts;
}

const HIST_MS = 60_000;
const histogram = new Uint32Array(HIST_MS + 1);
let deliveries = 0;
let duplicates = 0;
let outOfRange = 0;
let packets = 0;
let joined = 0;
let failed = 0;
const seen: Uint8Array[] = [];
const sockets: Socket[] = [];
const bilis: WebSocket[] = [];
const tcps: TcpSocket[] = [];

function take(client: Uint8Array, m: Msg, now: number): void {
  if (m.seq < 1 || m.seq > maxSeq) {
    outOfRange++;
    return;
  }
  if (client[m.seq]) {
    duplicates++;
    return;
  }
  client[m.seq] = 1;
  deliveries++;
  const bucket = Math.min(HIST_MS, Math.max(0, now - sentAt(m)));
  histogram[bucket] = (histogram[bucket] ?? 0) + 1;
}

function settled(): void {
  if (joined + failed === count) process.stdout.write(`joined ${joined} failed ${failed}\n`);
}

const HEARTBEAT = encodePacket(Op.HEARTBEAT, Ver.BINARY);
const authPacket = (): Buffer => encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid: Number(room), protover, platform: 'web', type: 2 }));

/** What one Bilibili-protocol client does with whole server packets (auth reply, DANMU_MSG, merged or not). */
function biliReader(client: Uint8Array, welcome: () => void, beatOnce: () => void): (data: Buffer) => void {
  return (data) => {
    const now = Date.now();
    for (const p of decodeServerPackets(data)) {
      if (p.op === Op.AUTH_REPLY) {
        welcome();
        if ((p.json as { code?: number }).code === 0) {
          joined++;
          // The protocol's clients beat once right after the reply, then every 30 s.
          beatOnce();
        } else failed++;
        settled();
      } else if (p.op === Op.MESSAGE) {
        const body = p.json as { cmd?: string; info?: unknown[] };
        if (body.cmd !== 'DANMU_MSG' || !body.info) continue;
        const info0 = body.info[0] as unknown[];
        const extra = JSON.parse((info0[15] as { extra: string }).extra) as { danmaku: { seq: number } };
        take(client, { seq: extra.danmaku.seq, ts: info0[4] as number, content: body.info[1] as string }, now);
      }
    }
    packets++;
  };
}

/** One Bilibili-protocol client: auth, then DANMU_MSG packets (merged, compressed per protover). */
function connectBili(client: Uint8Array): void {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  bilis.push(ws);
  const welcome = { done: false };
  ws.on('open', () => ws.send(authPacket()));
  ws.on('message', biliReader(client, () => (welcome.done = true), () => ws.send(HEARTBEAT)));
  ws.on('error', () => undefined);
  ws.on('close', () => failedUnlessWelcomed(welcome));
}

/** A connection that closed before the auth reply counts as failed, once. */
function failedUnlessWelcomed(welcome: { done: boolean }): void {
  if (welcome.done) return;
  welcome.done = true;
  failed++;
  settled();
}

/** The same client on raw TCP: whole packets cut from the stream by the length in their header. */
function connectBiliTcp(client: Uint8Array): void {
  const at = url.lastIndexOf(':');
  const socket = tcpConnect(Number(url.slice(at + 1)), url.slice(0, at));
  socket.setNoDelay(true);
  tcps.push(socket);
  const welcome = { done: false };
  let pending: Buffer = Buffer.alloc(0);
  const read = biliReader(client, () => (welcome.done = true), () => socket.write(HEARTBEAT));
  socket.on('connect', () => socket.write(authPacket()));
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let end = 0;
    while (pending.length - end >= HEADER_LENGTH) {
      const length = pending.readUInt32BE(end);
      if (pending.length - end < length) break;
      end += length;
    }
    if (end === 0) return;
    read(pending.subarray(0, end));
    pending = end === pending.length ? Buffer.alloc(0) : Buffer.from(pending.subarray(end));
  });
  socket.on('error', () => undefined);
  socket.on('close', () => failedUnlessWelcomed(welcome));
}

// Bilibili clients beat every 30 s, or the server closes them as idle.
const beat = setInterval(() => {
  for (const ws of bilis) if (ws.readyState === WebSocket.OPEN) ws.send(HEARTBEAT);
  for (const socket of tcps) if (!socket.destroyed && socket.writable) socket.write(HEARTBEAT);
}, 30_000);
beat.unref();

function connect(i: number): void {
  const client = new Uint8Array(maxSeq + 1);
  seen[i] = client;
  if (kind === 'bili') return connectBili(client);
  if (kind === 'bili-tcp') return connectBiliTcp(client);
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: token ? { token } : {} });
  sockets.push(socket);
  if (kind === 'ours') {
    socket.on('messages', (packet: { messages: Msg[] }) => {
      packets++;
      const now = Date.now();
      for (const m of packet.messages) take(client, m, now);
    });
  } else {
    socket.on('message', (m: Msg) => {
      packets++;
      take(client, m, Date.now());
    });
  }
  socket.on('connect', () => {
    socket.emit('join', kind === 'ours' ? { roomId: room, types: ['comment'] } : { roomId: room }, (ack: { ok: boolean }) => {
      if (ack?.ok) joined++;
      else failed++;
      if (joined + failed === count) process.stdout.write(`joined ${joined} failed ${failed}\n`);
    });
  });
  socket.on('connect_error', () => {
    failed++;
    if (joined + failed === count) process.stdout.write(`joined ${joined} failed ${failed}\n`);
  });
}

// Connect in small bursts: thousands of simultaneous handshakes would measure the accept queue.
let next = 0;
const BURST = Number(process.env.BURST ?? '50');
const burst = setInterval(() => {
  for (let k = 0; k < BURST && next < count; k++) connect(next++);
  if (next >= count) clearInterval(burst);
}, 20);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.split(' ');
  // Cheap, for the drain loop; `report` scans every client and is asked for once at the end.
  if (cmd === 'progress') process.stdout.write(`progress ${deliveries}\n`);
  if (cmd === 'report') {
    const sent = Number(arg);
    let lost = 0;
    for (const client of seen) {
      let got = 0;
      for (let s = 1; s <= sent; s++) got += client[s] as number;
      lost += sent - got;
    }
    const hist: [number, number][] = [];
    histogram.forEach((n, ms) => {
      if (n > 0) hist.push([ms, n]);
    });
    const connected = sockets.filter((s) => s.connected).length + bilis.filter((ws) => ws.readyState === WebSocket.OPEN).length + tcps.filter((t) => !t.destroyed).length;
    process.stdout.write(`report ${JSON.stringify({ deliveries, duplicates, outOfRange, packets, lost, connected, hist })}\n`);
  }
  if (cmd === 'exit') {
    for (const s of sockets) s.close();
    for (const ws of bilis) ws.terminate();
    for (const socket of tcps) socket.destroy();
    process.exit(0);
  }
});
process.stdin.on('end', () => process.exit(0));
