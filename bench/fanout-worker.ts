/**
 * A bench client process: COUNT clients in one room (ours and the Bilibili wires through the load
 * tool's client code, bench/lib/load/clients.ts). Records, per client, which seqs
 * arrived (exact duplicate and loss counts) and a latency histogram (ms, message ts -> received).
 * stdin `report MAXSEQ` prints `report {json}`; `count` prints `count JOINED FAILED STARTED`; `halt` stops
 * opening clients (the connections bench's ramp hit a ceiling); `exit` leaves.
 *
 * KIND=ours: joins through the connector protocol (`join`, `messages` packets).
 * KIND=baseline: the plain server's `join` and one `message` event per message.
 * KIND=bili: the Bilibili live protocol over WebSocket (URL is the /sub endpoint, ROOM the numeric
 * roomid, PROTOVER 3 brotli / 2 zlib / 0 plain); seq comes from the DANMU_MSG extra.
 * KIND=bili-tcp: the same protocol on its raw TCP wire (URL is `host:port`): the auth packet, then
 * heartbeats, as a Bilibili client does; server packets cut from the byte stream by their length.
 */
import { createInterface } from 'node:readline';
import { io, type Socket } from 'socket.io-client';
import { biliTcpViewer, biliWsViewer, socketioViewer, type Viewer, type ViewerEvents } from './lib/load/clients.js';

const url = process.env.URL as string;
const room = process.env.ROOM as string;
const count = Number(process.env.COUNT);
const kind = process.env.KIND as 'ours' | 'baseline' | 'bili' | 'bili-tcp';
const protover = Number(process.env.PROTOVER ?? '3');
const maxSeq = Number(process.env.MAX_SEQ);
const token = process.env.TOKEN;
/** Loopback source addresses to spread over (past one address's ephemeral ports), round robin. */
const sources = (process.env.SOURCES ?? '').split(',').filter(Boolean);

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
const viewers: Viewer[] = [];
let open = 0;

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

/** Clients this worker opens: COUNT, or as many as it had started when told to `halt`. */
let target = count;
let reported = false;
function settled(): void {
  if (!reported && joined + failed === target) {
    reported = true;
    process.stdout.write(`joined ${joined} failed ${failed}\n`);
  }
}

/** One client of the shared client code (bench/lib/load/clients.ts): joined once ready, failed if it ends first. */
function eventsFor(client: Uint8Array): ViewerEvents {
  let state: 'waiting' | 'ready' | 'ended' = 'waiting';
  return {
    ready: () => {
      if (state !== 'waiting') return;
      state = 'ready';
      joined++;
      open++;
      settled();
    },
    messages: (list) => {
      packets++;
      const now = Date.now();
      for (const m of list) take(client, m, now);
    },
    closed: () => {
      if (state === 'ready') open--;
      else if (state === 'waiting') {
        failed++;
        settled();
      }
      state = 'ended';
    },
    error: () => undefined,
  };
}

function connect(i: number): void {
  const client = new Uint8Array(maxSeq + 1);
  seen[i] = client;
  const localAddress = sources.length ? sources[i % sources.length] : undefined;
  const bili = { roomid: Number(room), protover, localAddress };
  if (kind === 'bili') return void viewers.push(biliWsViewer(url, bili, eventsFor(client)));
  if (kind === 'bili-tcp') return void viewers.push(biliTcpViewer(url, bili, eventsFor(client)));
  if (kind === 'ours') return void viewers.push(socketioViewer(url, { roomId: room, token, localAddress }, eventsFor(client)));
  // The plain socket.io server of the baseline: its own `join` and one `message` event per message.
  const socket = io(url, { transports: ['websocket'], reconnection: false, forceNew: true, auth: token ? { token } : {} });
  sockets.push(socket);
  socket.on('message', (m: Msg) => {
    packets++;
    take(client, m, Date.now());
  });
  socket.on('connect', () => {
    socket.emit('join', { roomId: room }, (ack: { ok: boolean }) => {
      if (ack?.ok) joined++;
      else failed++;
      settled();
    });
  });
  socket.on('connect_error', () => {
    failed++;
    settled();
  });
}

// Connect in small bursts: thousands of simultaneous handshakes would measure the accept queue.
// At most PENDING handshakes in flight per worker (300): a server (or a kernel) that falls behind
// slows the ramp instead of piling up handshakes that time out. 100,000 Bilibili TCP clients over
// 6 workers: 2,000 each stopped at 68k on connect errors, 300 each reached 99.2k in 61 s.
let next = 0;
const BURST = Number(process.env.BURST ?? '50');
const PENDING = Number(process.env.PENDING ?? '300');
const burst = setInterval(() => {
  for (let k = 0; k < BURST && next < target && next - joined - failed < PENDING; k++) connect(next++);
  if (next >= target) clearInterval(burst);
}, 20);

createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, arg] = line.split(' ');
  // Cheap, for the drain loop; `report` scans every client and is asked for once at the end.
  if (cmd === 'progress') process.stdout.write(`progress ${deliveries}\n`);
  // The ramp's reading: clients joined, failed, and started so far.
  if (cmd === 'count') process.stdout.write(`count ${joined} ${failed} ${next}\n`);
  // The ramp stops here: no more clients; `joined` is printed once those in flight settled.
  if (cmd === 'halt') {
    clearInterval(burst);
    target = next;
    settled();
  }
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
    const connected = sockets.filter((s) => s.connected).length + open;
    process.stdout.write(`report ${JSON.stringify({ deliveries, duplicates, outOfRange, packets, lost, connected, hist })}\n`);
  }
  if (cmd === 'exit') {
    for (const s of sockets) s.close();
    for (const v of viewers) v.close();
    process.exit(0);
  }
});
process.stdin.on('end', () => process.exit(0));
