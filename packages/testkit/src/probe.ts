/**
 * Measures delivery on a running deployment from the outside, as its users meet it: comments sent
 * over HTTP open-loop at a fixed rate, received by a socket.io viewer and a Bilibili-protocol
 * viewer (the npm `bilibili-live-ws` client over raw TCP) in each room, and read by a poller.
 * Latency is receive time minus the message's `ts` (stamped by the front that accepted it).
 * Used by the topology suites and by the bench suite's split-topology rows.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { LiveTCP } from 'bilibili-live-ws';
import { io, type Socket } from 'socket.io-client';
import { tokenFor } from './harness.js';

export interface ProbeOptions {
  /** A front's base URL. */
  frontUrl: string;
  /** Numeric room ids (Bilibili clients name rooms by number). */
  rooms: string[];
  /** Comments per second over all rooms, sent open-loop (on schedule, whatever the answers). */
  rate: number;
  seconds: number;
  /** Viewers per room on each wire. */
  viewers?: { socketio?: number; bilibili?: number; poll?: number };
  /** Distinct senders: each may send DANMAKU_RATE_USER_MAX per window. */
  senders?: number;
  /** How long to wait for stragglers after the last send. */
  drainMs?: number;
  /** /metrics of every role whose stage times go into the breakdown (fronts, processors, connectors). */
  metricsUrls?: string[];
}

/** Mean ms spent in each stage of a message's way, from the roles' histograms over the probe. */
export interface StageBreakdown {
  /** ts -> produce started: auth, checks (rate limit, words, bans) on the front. */
  frontChecks: number;
  /** produce -> acknowledged by the bus (Kafka: every in-sync replica). */
  produce: number;
  /** acknowledged -> handed to a processor (the consumer's fetch). */
  fetch: number;
  /** handed -> stored in Redis (the Lua append). */
  processorRedis: number;
  /** stored -> room announced (the signal's publish). */
  signal: number;
  /** announced -> emitted by a connector (pusher, notify, the connector's pull and merge window). */
  pushConnector: number;
  /** emitted -> in the viewer's handler (socket.io, the network, the client). */
  wire: number;
}

export interface WireResult {
  viewers: number;
  expected: number;
  delivered: number;
  lost: number;
  duplicated: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface ProbeResult {
  sent: number;
  acked: number;
  refused: number;
  /** Send answers (HTTP round trip) p99. */
  ackP99Ms: number;
  wires: Record<'socketio' | 'bilibili' | 'poll', WireResult>;
  breakdown: StageBreakdown | null;
}

const STAGES = {
  produce: 'danmaku_ingest_produce_seconds',
  acked: 'danmaku_ingest_acked_delay_seconds',
  fetched: 'danmaku_processor_fetched_delay_seconds',
  stored: 'danmaku_processor_delay_seconds',
  announced: 'danmaku_processor_announced_delay_seconds',
  emitted: 'danmaku_connector_emit_delay_seconds',
} as const;

type Sums = Record<keyof typeof STAGES, { sum: number; count: number }>;

/** Sums and counts of the stage histograms over every role (all label sets added up). */
async function scrapeStages(urls: string[]): Promise<Sums> {
  const sums = Object.fromEntries(Object.keys(STAGES).map((k) => [k, { sum: 0, count: 0 }])) as Sums;
  for (const url of urls) {
    const text = await (await fetch(url)).text();
    for (const line of text.split('\n')) {
      for (const [stage, name] of Object.entries(STAGES) as [keyof typeof STAGES, string][]) {
        if (line.startsWith(`${name}_sum`)) sums[stage].sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        else if (line.startsWith(`${name}_count`)) sums[stage].count += Number(line.slice(line.lastIndexOf(' ') + 1));
      }
    }
  }
  return sums;
}

function breakdownOf(before: Sums, after: Sums, clientMeanMs: number): StageBreakdown {
  const mean = (stage: keyof typeof STAGES): number => {
    const count = after[stage].count - before[stage].count;
    return count > 0 ? ((after[stage].sum - before[stage].sum) / count) * 1000 : 0;
  };
  const at = { produce: mean('produce'), acked: mean('acked'), fetched: mean('fetched'), stored: mean('stored'), announced: mean('announced'), emitted: mean('emitted') };
  const round = (ms: number): number => Math.round(ms * 10) / 10;
  return {
    frontChecks: round(at.acked - at.produce),
    produce: round(at.produce),
    fetch: round(at.fetched - at.acked),
    processorRedis: round(at.stored - at.fetched),
    signal: round(at.announced - at.stored),
    pushConnector: round(at.emitted - at.announced),
    wire: round(clientMeanMs - at.emitted),
  };
}

interface RouteAnswer {
  endpoints: string[];
  bilibili: { ws: string[]; tcp: string[] };
}

interface WireMessage {
  id: string;
  ts: number;
}

const POLL_LIMIT = 200;

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

/** One viewer's record: when each message id arrived and how late. */
class Seen {
  readonly latencies: number[] = [];
  readonly ids = new Set<string>();
  duplicated = 0;

  constructor(readonly room: string) {}

  take(message: WireMessage): void {
    if (this.ids.has(message.id)) {
      this.duplicated++;
      return;
    }
    this.ids.add(message.id);
    this.latencies.push(Date.now() - message.ts);
  }
}

function summarize(viewers: Seen[], ackedByRoom: Map<string, Set<string>>): WireResult {
  const latencies = viewers.flatMap((v) => v.latencies).sort((a, b) => a - b);
  let expected = 0;
  let delivered = 0;
  for (const v of viewers) {
    const acked = ackedByRoom.get(v.room) ?? new Set<string>();
    expected += acked.size;
    for (const id of acked) if (v.ids.has(id)) delivered++;
  }
  return {
    viewers: viewers.length,
    expected,
    delivered,
    lost: expected - delivered,
    duplicated: viewers.reduce((n, v) => n + v.duplicated, 0),
    p50Ms: percentile(latencies, 50),
    p90Ms: percentile(latencies, 90),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? 0,
  };
}

async function socketViewer(url: string, room: string, opened: Socket[]): Promise<Seen> {
  const seen = new Seen(room);
  const socket = io(url, { transports: ['websocket'], reconnection: false, auth: { token: tokenFor(`probe-viewer-${opened.length}`) } });
  opened.push(socket);
  socket.on('messages', (packet: { roomId: string; messages: (WireMessage & { type: string })[] }) => {
    for (const m of packet.messages) if (m.type === 'comment') seen.take(m);
  });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const ack = (await socket.timeout(10_000).emitWithAck('join', { roomId: room, types: ['comment'] })) as { ok: boolean; error?: unknown };
  if (!ack.ok) throw new Error(`join ${room} refused: ${JSON.stringify(ack.error)}`);
  return seen;
}

async function bilibiliViewer(address: string, room: string, opened: LiveTCP[]): Promise<Seen> {
  const seen = new Seen(room);
  const [host, port] = address.split(':');
  const live = new LiveTCP(Number(room), { host: host as string, port: Number(port), protover: 3 });
  opened.push(live);
  live.on('msg', (data: { cmd: string; info?: unknown[] }) => {
    if (!data.cmd.includes('DANMU_MSG') || !data.info) return;
    const head = data.info[0] as unknown[];
    const extra = JSON.parse((head[15] as { extra: string }).extra) as { danmaku: { id: string } };
    seen.take({ id: extra.danmaku.id, ts: head[4] as number });
  });
  await new Promise<void>((resolve, reject) => {
    live.once('live', () => resolve());
    live.once('error', reject);
  });
  return seen;
}

/** Polls as the SDK does: from its cursor, again after the retryAfterMs the front answered. */
function poller(frontUrl: string, room: string, stop: AbortSignal): { seen: Seen; done: Promise<void> } {
  const seen = new Seen(room);
  const done = (async () => {
    let cursor = '';
    let first = true;
    while (!stop.aborted) {
      const res = await fetch(`${frontUrl}/v1/rooms/${room}/messages?types=comment&limit=${POLL_LIMIT}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`).catch(() => null);
      if (!res || res.status !== 200) {
        await delay(200);
        continue;
      }
      const body = (await res.json()) as { messages: WireMessage[]; cursor: string; retryAfterMs: number };
      // The first answer is the room's history, sent before the probe began.
      if (!first) for (const m of body.messages) seen.take(m);
      first = false;
      cursor = body.cursor;
      await delay(body.retryAfterMs, undefined, { signal: stop }).catch(() => undefined);
    }
  })();
  return { seen, done };
}

export async function probeDelivery(options: ProbeOptions): Promise<ProbeResult> {
  const route = (await (await fetch(`${options.frontUrl}/v1/route`)).json()) as RouteAnswer;
  const sockets: Socket[] = [];
  const lives: LiveTCP[] = [];
  const stopPolls = new AbortController();
  const polls: { seen: Seen; done: Promise<void> }[] = [];
  const perRoom = { socketio: options.viewers?.socketio ?? 1, bilibili: options.viewers?.bilibili ?? 1, poll: options.viewers?.poll ?? 0 };
  try {
    const socketViewers: Promise<Seen>[] = [];
    const biliViewers: Promise<Seen>[] = [];
    let n = 0;
    for (const room of options.rooms) {
      for (let i = 0; i < perRoom.socketio; i++) socketViewers.push(socketViewer(route.endpoints[n++ % route.endpoints.length] as string, room, sockets));
      for (let i = 0; i < perRoom.bilibili; i++) biliViewers.push(bilibiliViewer(route.bilibili.tcp[n++ % route.bilibili.tcp.length] as string, room, lives));
      for (let i = 0; i < perRoom.poll; i++) polls.push(poller(options.frontUrl, room, stopPolls.signal));
    }
    const [socketSeen, biliSeen] = await Promise.all([Promise.all(socketViewers), Promise.all(biliViewers)]);
    // Pollers take their first (history) answer before anything is sent.
    await delay(1500);
    const stagesBefore = options.metricsUrls ? await scrapeStages(options.metricsUrls) : null;

    const senders = options.senders ?? Math.max(4, Math.ceil(options.rate / 1.5));
    const tokens = Array.from({ length: senders }, (_, i) => tokenFor(`probe-sender-${i}`));
    const ackedByRoom = new Map(options.rooms.map((r) => [r, new Set<string>()]));
    const total = Math.round(options.rate * options.seconds);
    const ackTimes: number[] = [];
    let acked = 0;
    let refused = 0;
    const start = performance.now();
    const sends: Promise<void>[] = [];
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / options.rate;
      const wait = due - performance.now();
      if (wait > 1) await delay(wait);
      const room = options.rooms[i % options.rooms.length] as string;
      const sentAt = performance.now();
      sends.push(
        fetch(`${options.frontUrl}/v1/rooms/${room}/messages`, {
          method: 'POST',
          headers: { authorization: `Bearer ${tokens[i % senders]}`, 'content-type': 'application/json' },
          body: JSON.stringify({ type: 'comment', content: `probe ${i}` }),
        }).then(
          async (res) => {
            const body = (await res.json()) as { id?: string };
            ackTimes.push(performance.now() - sentAt);
            if (res.status === 202 && body.id) {
              acked++;
              ackedByRoom.get(room)?.add(body.id);
            } else refused++;
          },
          () => void refused++,
        ),
      );
    }
    await Promise.all(sends);
    await delay(options.drainMs ?? 3000);
    stopPolls.abort();
    await Promise.all(polls.map((p) => p.done));
    ackTimes.sort((a, b) => a - b);
    const socketLatencies = socketSeen.flatMap((v) => v.latencies);
    const clientMeanMs = socketLatencies.reduce((a, b) => a + b, 0) / Math.max(1, socketLatencies.length);
    const breakdown = stagesBefore && options.metricsUrls ? breakdownOf(stagesBefore, await scrapeStages(options.metricsUrls), clientMeanMs) : null;
    return {
      sent: total,
      acked,
      refused,
      ackP99Ms: Math.round(percentile(ackTimes, 99)),
      wires: {
        socketio: summarize(socketSeen, ackedByRoom),
        bilibili: summarize(biliSeen, ackedByRoom),
        poll: summarize(
          polls.map((p) => p.seen),
          ackedByRoom,
        ),
      },
      breakdown,
    };
  } finally {
    stopPolls.abort();
    for (const s of sockets) s.close();
    for (const l of lives) l.close();
  }
}
