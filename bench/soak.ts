/**
 * `npm run bench -- soak [--seconds 300] [--warmup 30] [--rooms 10] [--rate 40] [--likes 5]
 *   [--pollers 20] [--pollMs 1000] [--sockets 100] [--bili 100] [--churn 1] [--routes 2]`
 *
 * A soak at steady mixed load over the split topology, every role its own process (front,
 * processor, archiver, pusher, connector, router; scripts/supervisor.ts starts them) over the
 * Apache Kafka broker, the project's Redis and MariaDB. For --seconds: comments at --rate/s and likes
 * at --likes/s over HTTP to the front, --pollers polling the front every --pollMs, --sockets
 * socket.io and --bili Bilibili-protocol clients (WebSocket /sub, a quarter on raw TCP) held open
 * on the connector, --churn of them closed and reopened every second, and --routes router
 * look-ups per second. Every role's /metrics is read every 5 s (prom-client's default metrics:
 * heap used, resident memory, event-loop delay since the last read).
 *
 * Reports, per role, the start window (the 30 s after --warmup) and the end window (the last
 * 30 s): RSS, heap used, event-loop delay p50/p99/max; the heap's linear-fit slope over the
 * measured part; and a verdict. Flat = heap slope under 1 MB/min and end heap within +10 MB or
 * +20 % of start (the larger), RSS within +32 MB or +25 %; no role restarted. Then checks
 * nothing was lost: every comment acknowledged with 202 is in Redis and in the archive, and every
 * client that stayed connected got every comment of its room sent while it was there.
 * Writes bench/results/soak-latest.json (+ a timestamped copy) and prints a table.
 */
import { randomInt } from 'node:crypto';
import { connect as tcpConnect, type Socket as TcpSocket } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import { io as ioClient, type Socket } from 'socket.io-client';
import { Archive } from '@danmaku/archive';
import { MAX_SERVER_PACKET, Op, PacketStream, Ver, decodeServerPackets, encodePacket, type Packet } from '@danmaku/bilibili';
import { encodeCursor } from '@danmaku/protocol';
import { REPO_ROOT, freePort, sleep, startKafka, testConfig, tokenFor, waitFor } from '@danmaku/testkit';
import { Supervisor, type RoleSpec } from '../scripts/supervisor.js';
import { cpuSeconds } from './lib/cannon.js';
import { writeResult } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '300' },
    warmup: { type: 'string', default: '30' },
    rooms: { type: 'string', default: '10' },
    rate: { type: 'string', default: '40' },
    likes: { type: 'string', default: '5' },
    pollers: { type: 'string', default: '20' },
    pollMs: { type: 'string', default: '1000' },
    sockets: { type: 'string', default: '100' },
    bili: { type: 'string', default: '100' },
    churn: { type: 'string', default: '1' },
    routes: { type: 'string', default: '2' },
  },
});
const SECONDS = Math.max(30, Number(args.seconds));
const WARMUP_S = Math.min(Number(args.warmup), Math.floor(SECONDS / 4));
const ROOMS = Math.max(1, Number(args.rooms));
const RATE = Number(args.rate);
const LIKES = Number(args.likes);
const POLLERS = Number(args.pollers);
const POLL_MS = Math.max(100, Number(args.pollMs));
const SOCKETS = Number(args.sockets);
const BILI = Number(args.bili);
const CHURN = Number(args.churn);
const ROUTES = Number(args.routes);
const SAMPLE_MS = 5000;
const WINDOW_S = 30;
/** The verdict's tolerances. */
const FLAT = { heapSlopeMbPerMin: 1, heapGrowthMb: 10, heapGrowthRatio: 0.2, rssGrowthMb: 32, rssGrowthRatio: 0.25 };

const config = testConfig();
const cluster = `soak-${Date.now().toString(36)}`;
// Numeric room ids: the Bilibili clients name a room by number.
const rooms = Array.from({ length: ROOMS }, () => String(randomInt(100_000_000, 2_000_000_000)));

// ---------------------------------------------------------------- the load

/** Per room: acknowledged comment ids with the time of the 202. */
const acked = new Map<string, Map<string, number>>(rooms.map((room) => [room, new Map()]));
const stats = { sent: 0, acked: 0, sendErrors: 0, likes: 0, likeErrors: 0, polls: 0, pollErrors: 0, polled: 0, routes: 0, routeErrors: 0, sioDeliveries: 0, biliDeliveries: 0, reconnects: 0 };
let running = true;
let front = '';
let connector = '';
let router = '';
let biliTcp = 0;

async function sendLoop(): Promise<void> {
  const tokens = Array.from({ length: 50 }, (_, i) => tokenFor(`soak-sender-${i}`));
  let i = 0;
  const started = Date.now();
  while (running) {
    // Paced against the clock, not per send: a slow answer does not lower the rate.
    const due = started + (i * 1000) / RATE;
    if (due > Date.now()) await sleep(due - Date.now());
    const n = i++;
    const room = rooms[n % ROOMS] as string;
    stats.sent++;
    void fetch(`${front}/v1/rooms/${room}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens[n % tokens.length] as string}`, 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'comment', content: `soak ${n}`, clientMsgId: `soak-${n}` }),
      signal: AbortSignal.timeout(10_000),
    })
      .then(async (res) => {
        if (res.status === 202) {
          stats.acked++;
          acked.get(room)?.set(((await res.json()) as { id: string }).id, Date.now());
        } else {
          stats.sendErrors++;
          await res.body?.cancel();
        }
      })
      .catch(() => stats.sendErrors++);
  }
}

async function paced(perSecond: number, one: (n: number) => Promise<void>): Promise<void> {
  if (perSecond <= 0) return;
  let i = 0;
  const started = Date.now();
  while (running) {
    const due = started + (i * 1000) / perSecond;
    if (due > Date.now()) await sleep(due - Date.now());
    void one(i++);
  }
}

const likeLoop = (): Promise<void> =>
  paced(LIKES, async (n) => {
    const res = await fetch(`${front}/v1/rooms/${rooms[n % ROOMS] as string}/likes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokenFor(`soak-liker-${n % 20}`)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ count: 1 }),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => null);
    if (res && res.status < 300) stats.likes++;
    else stats.likeErrors++;
    await res?.body?.cancel();
  });

const routeLoop = (): Promise<void> =>
  paced(ROUTES, async (n) => {
    const res = await fetch(`${router}/v1/route?uid=soak-${n % 500}&deviceId=d${n % 97}&version=1.0.0`, { signal: AbortSignal.timeout(10_000) }).catch(() => null);
    if (res?.status === 200) stats.routes++;
    else stats.routeErrors++;
    await res?.body?.cancel();
  });

async function pollLoop(i: number): Promise<void> {
  const room = rooms[i % ROOMS] as string;
  let cursor: string | null = null;
  // Spread over the interval, so the pollers do not all come at once.
  await sleep((i * POLL_MS) / Math.max(1, POLLERS));
  while (running) {
    const started = Date.now();
    try {
      const res = await fetch(`${front}/v1/rooms/${room}/messages?types=comment&limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, { signal: AbortSignal.timeout(10_000) });
      if (res.status === 200) {
        const body = (await res.json()) as { messages: unknown[]; cursor: string };
        stats.polls++;
        stats.polled += body.messages.length;
        cursor = body.cursor;
      } else {
        stats.pollErrors++;
        await res.body?.cancel();
      }
    } catch {
      stats.pollErrors++;
    }
    await sleep(Math.max(0, POLL_MS - (Date.now() - started)));
  }
}

/** A long connection: which comments it got, from when it was in its room. */
interface Client {
  kind: 'socket.io' | 'bilibili-ws' | 'bilibili-tcp';
  room: string;
  joinedAt: number;
  /** Set when the server closed it, or it was churned: then it is not checked for completeness. */
  endedAt: number;
  ids: Set<string>;
  close(): void;
}
const clients: Client[] = [];

function openSocketIo(i: number): Promise<Client> {
  const room = rooms[i % ROOMS] as string;
  const socket: Socket = ioClient(connector, { transports: ['websocket'], auth: { token: tokenFor(`soak-viewer-${i}`) }, reconnection: false, timeout: 10_000 });
  const client: Client = { kind: 'socket.io', room, joinedAt: 0, endedAt: 0, ids: new Set(), close: () => socket.close() };
  socket.on('messages', (packet: { roomId: string; messages: { id: string }[] }) => {
    if (packet.roomId !== room) return;
    for (const m of packet.messages) client.ids.add(m.id);
    stats.sioDeliveries += packet.messages.length;
  });
  socket.on('disconnect', () => (client.endedAt ||= Date.now()));
  return new Promise((resolve, reject) => {
    socket.once('connect_error', reject);
    socket.once('connect', () => {
      socket
        .timeout(10_000)
        .emitWithAck('join', { roomId: room, types: ['comment'] })
        .then((ack: { ok: boolean }) => {
          if (!ack.ok) return reject(new Error(`join refused: ${JSON.stringify(ack)}`));
          client.joinedAt = Date.now();
          resolve(client);
        }, reject);
    });
  });
}

function openBili(i: number): Promise<Client> {
  const room = rooms[i % ROOMS] as string;
  const onTcp = biliTcp > 0 && i % 4 === 3;
  const protover = i % 2 === 0 ? 3 : 2;
  const client: Client = { kind: onTcp ? 'bilibili-tcp' : 'bilibili-ws', room, joinedAt: 0, endedAt: 0, ids: new Set(), close: () => undefined };
  return new Promise((resolve, reject) => {
    let beat: NodeJS.Timeout | null = null;
    const seen = (packets: Packet[]): void => {
      for (const packet of packets) {
        const json = (packet as { json?: { code?: number; cmd?: string; info?: unknown[] } }).json;
        if (packet.op === Op.AUTH_REPLY) {
          if (json?.code !== 0) return reject(new Error(`auth refused: ${JSON.stringify(json)}`));
          client.joinedAt = Date.now();
          resolve(client);
        } else if (json?.cmd === 'DANMU_MSG') {
          const id = (json.info?.[0] as unknown[] | undefined)?.[7];
          if (typeof id === 'string') client.ids.add(id);
          stats.biliDeliveries++;
        }
      }
    };
    const authPacket = encodePacket(Op.AUTH, Ver.BINARY, JSON.stringify({ uid: 0, roomid: Number(room), protover, platform: 'web', type: 2 }));
    const heartbeat = encodePacket(Op.HEARTBEAT, Ver.BINARY, '[object Object]');
    const ended = (): void => {
      client.endedAt ||= Date.now();
      if (beat) clearInterval(beat);
      reject(new Error('closed before auth'));
    };
    if (onTcp) {
      const socket: TcpSocket = tcpConnect(biliTcp, '127.0.0.1');
      const stream = new PacketStream(MAX_SERVER_PACKET);
      client.close = () => socket.destroy();
      socket.on('error', () => undefined);
      socket.on('close', ended);
      socket.on('connect', () => {
        socket.write(authPacket);
        beat = setInterval(() => socket.write(heartbeat), 30_000);
      });
      socket.on('data', (chunk: Buffer) => seen(stream.push(chunk).flatMap((p) => decodeServerPackets(encodePacket(p.op, p.ver, p.body, p.seq)))));
    } else {
      const ws = new WebSocket(`${connector.replace('http', 'ws')}/sub`, { perMessageDeflate: false });
      client.close = () => ws.close();
      ws.on('error', () => undefined);
      ws.on('close', ended);
      ws.on('open', () => {
        ws.send(authPacket);
        beat = setInterval(() => ws.send(heartbeat), 30_000);
      });
      ws.on('message', (data: Buffer) => seen(decodeServerPackets(data)));
    }
  });
}

async function openAll(): Promise<void> {
  for (let i = 0; i < Math.max(SOCKETS, BILI); i++) {
    if (i < SOCKETS) clients.push(await openSocketIo(i));
    if (i < BILI) clients.push(await openBili(i));
  }
}

/** Closes and reopens --churn connections a second, alternating transports. */
async function churnLoop(): Promise<void> {
  let n = 0;
  await paced(CHURN, async () => {
    const at = randomInt(0, clients.length);
    const old = clients[at];
    if (!old) return;
    old.endedAt ||= Date.now();
    old.close();
    const i = SOCKETS + BILI + n++;
    try {
      clients[at] = old.kind === 'socket.io' ? await openSocketIo(i) : await openBili(i);
      // The replaced one is kept aside only for its counts.
      stats.reconnects++;
    } catch {
      stats.reconnects++;
    }
  });
}

// ---------------------------------------------------------------- the roles' metrics

interface Sample {
  t: number;
  rssMb: number;
  heapMb: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

function metric(text: string, name: string): number {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+|NaN)$`, 'm').exec(text);
  return match ? Number(match[1]) : Number.NaN;
}

async function scrape(port: number): Promise<Sample | null> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(4000) })).text();
    const mb = (bytes: number): number => bytes / 1024 / 1024;
    return {
      t: Date.now(),
      rssMb: mb(metric(text, 'process_resident_memory_bytes')),
      heapMb: mb(metric(text, 'nodejs_heap_size_used_bytes')),
      lagP50Ms: metric(text, 'nodejs_eventloop_lag_p50_seconds') * 1000,
      lagP99Ms: metric(text, 'nodejs_eventloop_lag_p99_seconds') * 1000,
      lagMaxMs: metric(text, 'nodejs_eventloop_lag_max_seconds') * 1000,
    };
  } catch {
    return null;
  }
}

interface WindowStats {
  rssMb: number;
  heapMb: number;
  lagP50Ms: number;
  lagP99Ms: number;
  lagMaxMs: number;
}

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
const median = (xs: number[]): number => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** Memory as the window's mean (the heap saw-tooths between collections); delay as its median p50, worst p99 and max. */
function windowOf(samples: Sample[]): WindowStats {
  return {
    rssMb: round(mean(samples.map((s) => s.rssMb))),
    heapMb: round(mean(samples.map((s) => s.heapMb))),
    lagP50Ms: round(median(samples.map((s) => s.lagP50Ms))),
    lagP99Ms: round(Math.max(...samples.map((s) => s.lagP99Ms))),
    lagMaxMs: round(Math.max(...samples.map((s) => s.lagMaxMs))),
  };
}

/** Least-squares slope of the heap, MB per minute. */
function slopeMbPerMin(samples: Sample[]): number {
  const xs = samples.map((s) => s.t / 60_000);
  const ys = samples.map((s) => s.heapMb);
  const mx = mean(xs);
  const my = mean(ys);
  let num = 0;
  let den = 0;
  for (let i = 0; i < xs.length; i++) {
    num += ((xs[i] as number) - mx) * ((ys[i] as number) - my);
    den += ((xs[i] as number) - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

// ---------------------------------------------------------------- the run

async function storedInRedis(room: string): Promise<Set<string>> {
  const ids = new Set<string>();
  let cursor = encodeCursor({ comment: 0 });
  for (let i = 0; i < 1000; i++) {
    const res = await fetch(`${front}/v1/rooms/${room}/messages?types=comment&limit=200&cursor=${encodeURIComponent(cursor)}`);
    const body = (await res.json()) as { messages: { id: string }[]; cursor: string };
    for (const m of body.messages) ids.add(m.id);
    if (body.messages.length === 0) break;
    cursor = body.cursor;
  }
  return ids;
}

async function main(): Promise<void> {
  const kafka = await startKafka({ topics: { [config.topic]: config.partitions } });
  const port = async (): Promise<number> => freePort();
  const ports = { front: await port(), processor: await port(), archiver: await port(), pusher: await port(), connector: await port(), router: await port(), biliTcp: await port() };
  const roles: RoleSpec[] = [
    { name: 'processor', entry: 'apps/processor/src/main.ts', port: ports.processor, env: { PROCESSOR_PORT: String(ports.processor) } },
    { name: 'archiver', entry: 'apps/archiver/src/main.ts', port: ports.archiver, env: { ARCHIVER_PORT: String(ports.archiver) } },
    { name: 'pusher', entry: 'apps/pusher/src/main.ts', port: ports.pusher, env: { PUSHER_PORT: String(ports.pusher) } },
    { name: 'connector', entry: 'apps/connector/src/main.ts', port: ports.connector, env: { CONNECTOR_PORT: String(ports.connector), DANMAKU_BILI_TCP_PORT: String(ports.biliTcp) } },
    { name: 'router', entry: 'apps/router/src/main.ts', port: ports.router, env: { ROUTER_PORT: String(ports.router) } },
    { name: 'front', entry: 'apps/front/src/main.ts', port: ports.front, env: { PORT: String(ports.front) } },
  ];
  const logDir = join(REPO_ROOT, '.run', 'soak');
  const supervisor = new Supervisor({
    roles,
    logDir,
    env: {
      ...process.env,
      HOST: '127.0.0.1',
      NODE_ENV: 'development',
      KAFKA_BROKERS: kafka.brokers.join(','),
      MYSQL_URL: config.mysqlUrl,
      REDIS_URL: config.redisUrl,
      REDIS_READ_URL: '',
      DANMAKU_JWT_SECRET: config.jwtSecret,
      DANMAKU_CLUSTER: cluster,
      DANMAKU_BILI_TCP_PORT: '0',
      LOG_LEVEL: 'warn',
      DANMAKU_RATE_USER_MAX: '100000000',
      DANMAKU_RATE_IP_MAX: '100000000',
      // Every comment of the run stays in Redis, so "stored" can be checked for all of them.
      DANMAKU_RETENTION: String(Math.ceil((RATE * (SECONDS + 60)) / ROOMS) + 1000),
    },
    log: (line) => process.stdout.write(`  ${line}\n`),
  });
  front = `http://127.0.0.1:${ports.front}`;
  connector = `http://127.0.0.1:${ports.connector}`;
  router = `http://127.0.0.1:${ports.router}`;
  biliTcp = ports.biliTcp;
  const samples = new Map<string, Sample[]>(roles.map((r) => [r.name, []]));
  let sampler: NodeJS.Timeout | null = null;
  try {
    process.stdout.write(`soak: ${SECONDS} s (warm-up ${WARMUP_S} s), ${ROOMS} rooms, ${RATE} comments/s + ${LIKES} likes/s, ${POLLERS} pollers every ${POLL_MS} ms, ${SOCKETS} socket.io + ${BILI} Bilibili clients, churn ${CHURN}/s, ${ROUTES} route look-ups/s; role logs in ${logDir}\n`);
    await supervisor.start();
    await openAll();
    // Flowing end to end before the clock starts: a comment reaches clients of both transports
    // (the pusher finds the connector through the registry, which takes a sweep or two).
    const probeRoom = rooms[0] as string;
    const probeToken = tokenFor('soak-probe');
    await waitFor('a probe comment to reach both transports', async () => {
      const res = await fetch(`${front}/v1/rooms/${probeRoom}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${probeToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: 'probe' }),
      });
      if (res.status !== 202) return false;
      const { id } = (await res.json()) as { id: string };
      await sleep(1000);
      const reached = clients.filter((c) => c.room === probeRoom && c.ids.has(id));
      return reached.some((c) => c.kind === 'socket.io') && reached.some((c) => c.kind !== 'socket.io');
    }, 60_000, 500);
    process.stdout.write(`  load on: ${clients.length} long connections open\n`);
    const startedAt = Date.now();
    const loops = [sendLoop(), likeLoop(), routeLoop(), churnLoop(), ...Array.from({ length: POLLERS }, (_, i) => pollLoop(i))];
    sampler = setInterval(() => {
      for (const role of roles) {
        void scrape(role.port).then((s) => {
          if (s && Date.now() - startedAt >= WARMUP_S * 1000) samples.get(role.name)?.push(s);
        });
      }
    }, SAMPLE_MS);
    // CPU per role over the measured part (after the warm-up), from /proc.
    const cpuAt = new Map<string, { t: number; cpu: number | null }>();
    const cpuTimer = setTimeout(() => {
      for (const role of roles) cpuAt.set(role.name, { t: Date.now(), cpu: cpuSeconds(supervisor.pid(role.name) ?? 0) });
    }, WARMUP_S * 1000);
    let lastProgress = Date.now();
    while (Date.now() - startedAt < SECONDS * 1000) {
      await sleep(1000);
      if (Date.now() - lastProgress >= 15_000) {
        lastProgress = Date.now();
        const memory = roles.map((r) => `${r.name} ${round(samples.get(r.name)?.at(-1)?.heapMb ?? Number.NaN, 0)}`).join(' ');
        process.stdout.write(
          `  ${Math.round((Date.now() - startedAt) / 1000)} s: sent ${stats.sent} acked ${stats.acked} (errors ${stats.sendErrors}), polls ${stats.polls} (errors ${stats.pollErrors}), deliveries socket.io ${stats.sioDeliveries} bilibili ${stats.biliDeliveries}, reconnects ${stats.reconnects}; heap MB: ${memory}\n`,
        );
      }
    }
    clearInterval(sampler);
    clearTimeout(cpuTimer);
    sampler = null;
    const cpuPercent = new Map<string, number | null>();
    for (const role of roles) {
      const at = cpuAt.get(role.name);
      const now = cpuSeconds(supervisor.pid(role.name) ?? 0);
      cpuPercent.set(role.name, at?.cpu != null && now !== null ? round(((now - at.cpu) / ((Date.now() - at.t) / 1000)) * 100, 0) : null);
    }
    const endedAt = Date.now();
    running = false;
    await Promise.all(loops);
    // In-flight sends answered (10 s timeout each), then the pipeline drains to Redis and MariaDB.
    await sleep(3000);

    const archive = new Archive(config.mysqlUrl);
    let lost = { redis: 0, archive: 0 };
    const ackedTotal = [...acked.values()].reduce((n, m) => n + m.size, 0);
    try {
      await waitFor('every acknowledged comment stored', async () => {
        lost = { redis: 0, archive: 0 };
        for (const room of rooms) {
          const ids = [...(acked.get(room) as Map<string, number>).keys()];
          const inRedis = await storedInRedis(room);
          const [rows] = (await archive.pool.query('SELECT id FROM messages WHERE room_id = ?', [room])) as unknown as [{ id: string }[]];
          const inArchive = new Set(rows.map((r) => r.id));
          lost.redis += ids.filter((id) => !inRedis.has(id)).length;
          lost.archive += ids.filter((id) => !inArchive.has(id)).length;
        }
        return lost.redis === 0 && lost.archive === 0;
      }, 60_000, 1000).catch(() => undefined);
    } finally {
      await archive.close();
    }
    // Clients that stayed connected: every comment of their room acknowledged between their join
    // (plus a second, the join's own propagation) and the end of the load (minus the push latency allowance) reached them.
    let stayed = 0;
    let missed = 0;
    const missedBy: Record<string, number> = {};
    for (const client of clients) {
      if (client.endedAt || !client.joinedAt) continue;
      stayed++;
      for (const [id, at] of acked.get(client.room) as Map<string, number>) {
        if (at > client.joinedAt + 1000 && at < endedAt - 5000 && !client.ids.has(id)) {
          missed++;
          missedBy[client.kind] = (missedBy[client.kind] ?? 0) + 1;
        }
      }
    }
    for (const client of clients) client.close();

    const rows = roles.map((role) => {
      const all = samples.get(role.name) ?? [];
      const perWindow = Math.max(1, Math.round((WINDOW_S * 1000) / SAMPLE_MS));
      const start = windowOf(all.slice(0, perWindow));
      const end = windowOf(all.slice(-perWindow));
      const slope = round(slopeMbPerMin(all), 2);
      const heapOk = slope < FLAT.heapSlopeMbPerMin && end.heapMb <= start.heapMb + Math.max(FLAT.heapGrowthMb, start.heapMb * FLAT.heapGrowthRatio);
      const rssOk = end.rssMb <= start.rssMb + Math.max(FLAT.rssGrowthMb, start.rssMb * FLAT.rssGrowthRatio);
      const restarts = supervisor.restarts(role.name);
      return { role: role.name, samples: all.length, cpuPercent: cpuPercent.get(role.name) ?? null, start, end, heapSlopeMbPerMin: slope, restarts, verdict: heapOk && rssOk && restarts === 0 ? 'flat' : 'GROWS' };
    });
    const table = [
      '| role | CPU % | RSS MB start → end | heap used MB start → end | heap slope MB/min | loop delay p50/p99/max ms, start | end | verdict |',
      '|---|---|---|---|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.role} | ${r.cpuPercent ?? '-'} | ${r.start.rssMb} → ${r.end.rssMb} | ${r.start.heapMb} → ${r.end.heapMb} | ${r.heapSlopeMbPerMin} | ${r.start.lagP50Ms} / ${r.start.lagP99Ms} / ${r.start.lagMaxMs} | ${r.end.lagP50Ms} / ${r.end.lagP99Ms} / ${r.end.lagMaxMs} | ${r.verdict}${r.restarts ? ` (${r.restarts} restarts)` : ''} |`,
      ),
    ].join('\n');
    const delivery = { clientsThatStayed: stayed, commentsMissedByThem: missed, missedBy };
    process.stdout.write(`\n${table}\n\n`);
    process.stdout.write(`load: ${JSON.stringify(stats)}\n`);
    process.stdout.write(`comments acknowledged ${ackedTotal}; not in Redis ${lost.redis}, not in the archive ${lost.archive}; clients that stayed ${stayed}, comments they missed ${missed}\n`);
    const path = writeResult('soak', {
      params: { seconds: SECONDS, warmupS: WARMUP_S, rooms: ROOMS, rate: RATE, likes: LIKES, pollers: POLLERS, pollMs: POLL_MS, sockets: SOCKETS, bili: BILI, churn: CHURN, routes: ROUTES, sampleMs: SAMPLE_MS, windowS: WINDOW_S },
      tolerance: FLAT,
      roles: rows,
      load: stats,
      stored: { acknowledged: ackedTotal, lostFromRedis: lost.redis, lostFromArchive: lost.archive },
      delivery,
      samples: Object.fromEntries(samples),
    });
    process.stdout.write(`wrote ${path}\n`);
    const flat = rows.every((r) => r.verdict === 'flat');
    process.stdout.write(`verdict: ${flat ? 'flat' : 'NOT flat'}; ${lost.redis + lost.archive === 0 ? 'nothing lost' : 'LOST comments'}\n`);
    process.exitCode = flat && lost.redis + lost.archive === 0 && missed === 0 ? 0 : 1;
  } finally {
    running = false;
    if (sampler) clearInterval(sampler);
    for (const client of clients) client.close();
    await supervisor.stop();
    await kafka.stop();
  }
}

await main();
// Sockets and timers of the load are not all unref'd: the run ends here.
process.exit();
