/**
 * `npm run bench -- live-show [--seconds 60] [--rooms 200] [--room-pollers 2] [--viewers 1000]
 *   [--huge-pollers 100] [--rate-huge 20] [--rate-small 20] [--poll-ms 2000] [--workers 2] [--probe 25] [--nice 10]`
 *
 * The defaults fit a 2-core machine that also runs the load generators: at 2,000 viewers and
 * 50 msg/s the generators took as much CPU as the servers and the viewers fell seconds behind.
 *
 * A live show end to end on the split topology: every role its own process (front, processor,
 * archiver, pusher, connector, router) over an Apache Kafka broker (private), a private Redis and
 * the project's MariaDB (database danmaku_bench). Many small rooms with a few pollers each, and
 * one huge room watched by --viewers long connections (half socket.io, half the Bilibili
 * protocol, over worker processes) and --huge-pollers pollers; senders at steady rates into both.
 * The viewers and pollers run at nice 10 so they do not starve the servers on a small machine; in
 * each transport --probe viewers run at normal priority and give the e2e latency. The two senders
 * (light) run at normal priority so the send rates hold.
 *
 * Reports every role's CPU (CPU-seconds and % of one core over the run, /proc/PID/stat) and RSS,
 * sends accepted / stored (/ archived for the huge room), deliveries, e2e latency p50/p99 in the
 * huge room, polls/s, and lost / duplicated in the huge room (both must be 0: the exit code says).
 * Writes bench/results/live-show-latest.json (+ a timestamped copy).
 */
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg, setPriority } from 'node:os';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { Archive } from '@danmaku/archive';
import { loadConfig } from '@danmaku/config';
import { decodeCursor } from '@danmaku/protocol';
import { LOAD_ENV, freePort, spawnTs, startKafka, startRedis, tokenFor, waitFor, type TestKafka, type Spawned, type TestRedis } from '@danmaku/testkit';
import { cpuSeconds } from './lib/cannon.js';
import { writeResult } from './lib/report.js';
import { drainDeliveries, type WorkerReport } from './lib/worker-report.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '60' },
    rooms: { type: 'string', default: '200' },
    'room-pollers': { type: 'string', default: '2' },
    viewers: { type: 'string', default: '1000' },
    'huge-pollers': { type: 'string', default: '100' },
    'rate-huge': { type: 'string', default: '20' },
    'rate-small': { type: 'string', default: '20' },
    'poll-ms': { type: 'string', default: '2000' },
    workers: { type: 'string', default: '2' },
    probe: { type: 'string', default: '25' },
    nice: { type: 'string', default: '10' },
  },
});
const int = (name: keyof typeof args, min: number, max: number): number => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min || n > max) throw new Error(`--${name} must be an integer in ${min}..${max}`);
  return n;
};
const SECONDS = int('seconds', 5, 600);
const ROOMS = int('rooms', 1, 5000);
const ROOM_POLLERS = int('room-pollers', 0, 50);
const VIEWERS = int('viewers', 2, 20_000);
const HUGE_POLLERS = int('huge-pollers', 0, 5000);
const RATE_HUGE = int('rate-huge', 1, 2000);
const RATE_SMALL = int('rate-small', 0, 2000);
const POLL_MS = int('poll-ms', 100, 60_000);
const WORKERS = int('workers', 1, 8);
const PROBE = int('probe', 1, 500);
const NICE = int('nice', 0, 19);
const MAX_SEQ = Math.ceil(RATE_HUGE * SECONDS * 1.2) + 100;

const config = loadConfig();
const run = Date.now().toString(36);
// Bilibili-protocol clients name rooms by number, so the huge room is a number for both transports.
const hugeRoom = String(randomInt(100_000_000, 2_000_000_000));
const smallRooms = Array.from({ length: ROOMS }, (_, i) => `ls-${run}-${i}`);
const dbUrl = new URL(config.mysqlUrl);
dbUrl.pathname = '/danmaku_bench';

const rssBytes = (pid: number): number => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
};
const round = (n: number, digits = 2): number => Math.round(n * 10 ** digits) / 10 ** digits;
const log = (line: string) => process.stdout.write(`${line}\n`);

/** Asks a viewer worker (bench/fanout-worker.ts) one stdin question and parses its one-line answer. */
async function ask(worker: Spawned, question: string, answer: string): Promise<string> {
  const before = worker.output().lastIndexOf(`${answer} `);
  worker.child.stdin?.write(`${question}\n`);
  await waitFor(`viewer ${answer}`, () => worker.output().lastIndexOf(`${answer} `) > before && worker.output().endsWith('\n'), 30_000, 20);
  const text = worker.output();
  const at = text.lastIndexOf(`${answer} `);
  return text.slice(at + answer.length + 1, text.indexOf('\n', at));
}

function percentile(hist: Map<number, number>, p: number): number {
  const total = [...hist.values()].reduce((a, b) => a + b, 0);
  let seen = 0;
  for (const ms of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(ms) as number;
    if (seen >= total * p) return ms;
  }
  return 0;
}

const ROLES = [
  ['processor', 'apps/processor/src/main.ts', 'PROCESSOR_PORT'],
  ['archiver', 'apps/archiver/src/main.ts', 'ARCHIVER_PORT'],
  ['pusher', 'apps/pusher/src/main.ts', 'PUSHER_PORT'],
  ['connector', 'apps/connector/src/main.ts', 'CONNECTOR_PORT'],
  ['router', 'apps/router/src/main.ts', 'ROUTER_PORT'],
  ['front', 'apps/front/src/main.ts', 'PORT'],
] as const;

let kafka: TestKafka | null = null;
let redis: TestRedis | null = null;
const roles = new Map<string, { proc: Spawned; port: number }>();
const loadProcs: Spawned[] = [];
let failed = false;

async function niced(entry: string, env: Record<string, string>, nice: number): Promise<Spawned> {
  const proc = spawnTs(entry, env);
  if (nice && proc.child.pid) setPriority(proc.child.pid, nice);
  loadProcs.push(proc);
  return proc;
}

try {
  log(
    `live show: ${SECONDS} s; ${ROOMS} small rooms x ${ROOM_POLLERS} pollers, ${RATE_SMALL} msg/s over them; huge room ${hugeRoom}: ` +
      `${VIEWERS} long connections (socket.io + Bilibili), ${HUGE_POLLERS} pollers, ${RATE_HUGE} msg/s; polls every ${POLL_MS} ms`,
  );
  [kafka, redis] = await Promise.all([startKafka({ topics: { [config.topic]: config.partitions } }), startRedis()]);
  const probe = new Redis(redis.url);
  const redisPid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
  probe.disconnect();
  const env: Record<string, string> = {
    ...LOAD_ENV,
    LOG_LEVEL: 'warn',
    KAFKA_BROKERS: kafka.brokers.join(','),
    REDIS_URL: redis.url,
    REDIS_READ_URL: '',
    MYSQL_URL: dbUrl.toString(),
    DANMAKU_CLUSTER: `live-show-${run}`,
    // The huge room is big (local cache, merged pushes); the small rooms are not.
    DANMAKU_BIG_ROOM_ONLINE: '1000',
    DANMAKU_RETENTION: String(Math.max(1000, MAX_SEQ)),
  };
  // Every role at once (their start-up is mostly compiling TypeScript), then each must be ready.
  for (const [name, entry, portVar] of ROLES) {
    const port = await freePort();
    roles.set(name, { proc: spawnTs(entry, { ...env, [portVar]: String(port) }), port });
  }
  for (const [name, { proc, port }] of roles) {
    await waitFor(
      `${name} ready`,
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`${name} exited with ${proc.child.exitCode}:\n${proc.output()}`);
        return (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.status === 200;
      },
      120_000,
      200,
    );
  }
  const front = `http://127.0.0.1:${(roles.get('front') as { port: number }).port}`;
  const route = (await (await fetch(`${front}/v1/route?uid=live-show`)).json()) as { mode: string; endpoints: string[]; bilibili?: { ws: string[] } };
  const ioUrl = route.endpoints[0];
  const biliUrl = route.bilibili?.ws[0];
  if (route.mode !== 'long' || !ioUrl || !biliUrl) throw new Error(`the front's route answer names no long-connection endpoints: ${JSON.stringify(route)}`);
  log(`roles ready; front ${front}, socket.io ${ioUrl}, Bilibili ${biliUrl}`);

  // Viewers: per transport one probe process at normal priority, the rest over WORKERS processes at nice.
  const viewers: { transport: 'socket.io' | 'bilibili'; probe: boolean; proc: Spawned }[] = [];
  for (const transport of ['socket.io', 'bilibili'] as const) {
    const share = Math.floor(VIEWERS / 2) + (transport === 'socket.io' ? VIEWERS % 2 : 0);
    const probeCount = Math.min(PROBE, share);
    const sizes = [probeCount, ...Array.from({ length: WORKERS }, (_, w) => Math.floor((share - probeCount) / WORKERS) + (w < (share - probeCount) % WORKERS ? 1 : 0))];
    for (const [w, count] of sizes.entries()) {
      if (count === 0) continue;
      const proc = await niced(
        'bench/fanout-worker.ts',
        { URL: transport === 'socket.io' ? ioUrl : biliUrl, ROOM: hugeRoom, COUNT: String(count), KIND: transport === 'socket.io' ? 'ours' : 'bili', MAX_SEQ: String(MAX_SEQ), PROTOVER: '3' },
        w === 0 ? 0 : NICE,
      );
      viewers.push({ transport, probe: w === 0, proc });
    }
  }
  let joined = 0;
  let joinFailed = 0;
  for (const v of viewers) {
    await v.proc.waitForOutput(/joined \d+ failed \d+/, 180_000);
    joined += Number(/joined (\d+)/.exec(v.proc.output())?.[1]);
    joinFailed += Number(/failed (\d+)/.exec(v.proc.output())?.[1]);
  }
  log(`${joined}/${VIEWERS} viewers joined the huge room (${joinFailed} failed)`);
  // Let the subscriber counts reach the pusher (the huge room switches to broadcast).
  await new Promise((r) => setTimeout(r, 2000));

  const pids: Record<string, number> = { redis: redisPid, kafka: kafka.pid };
  for (const [name, { proc }] of roles) pids[name] = proc.child.pid as number;
  const cpu0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) ?? 0]));
  const load0 = loadavg();
  const t0 = Date.now();

  const senderTokens = Array.from({ length: 20 }, (_, i) => tokenFor(`live-show-sender-${i}`)).join(',');
  const base = { URL: front, DURATION_S: String(SECONDS), INTERVAL_MS: String(POLL_MS) };
  const load: { name: string; proc: Spawned }[] = [];
  // The senders are light and their rate is part of the scenario: normal priority, so a busy
  // machine does not quietly lower the load (the pollers and viewers are the ones at nice).
  load.push({ name: 'send huge', proc: await niced('bench/live-show-worker.ts', { ...base, KIND: 'sender', ROOMS: hugeRoom, RATE: String(RATE_HUGE), TOKENS: senderTokens }, 0) });
  if (RATE_SMALL > 0) load.push({ name: 'send small', proc: await niced('bench/live-show-worker.ts', { ...base, KIND: 'sender', ROOMS: smallRooms.join(','), RATE: String(RATE_SMALL), TOKENS: senderTokens }, 0) });
  if (ROOM_POLLERS > 0) load.push({ name: 'poll small', proc: await niced('bench/live-show-worker.ts', { ...base, KIND: 'pollers', ROOMS: smallRooms.join(','), COUNT: String(ROOMS * ROOM_POLLERS) }, NICE) });
  if (HUGE_POLLERS > 0) load.push({ name: 'poll huge', proc: await niced('bench/live-show-worker.ts', { ...base, KIND: 'pollers', ROOMS: hugeRoom, COUNT: String(HUGE_POLLERS) }, NICE) });

  const done: Record<string, unknown> = {};
  for (const { name, proc } of load) {
    // The worker exits right after its line: look for the line before looking at the exit code.
    const line = await waitFor(
      `${name} to finish`,
      () => {
        const m = /^done (\{.*\})$/m.exec(proc.output());
        if (m) return m[1];
        if (proc.child.exitCode !== null) throw new Error(`${name} exited with ${proc.child.exitCode}:\n${proc.output().slice(-2000)}`);
        return null;
      },
      (SECONDS + 60) * 1000,
      100,
    );
    done[name] = JSON.parse(line);
  }
  const sendsDone = Date.now();
  type Sent = { attempted: number; accepted: Record<string, number>; status: Record<string, number>; errors: number };
  type Polled = { polls: number; errors: number; status: Record<string, number>; messages: number; duplicates: number; latencyMsP99: number };
  const sentHuge = done['send huge'] as Sent;
  const sentSmall = (done['send small'] as Sent | undefined) ?? { attempted: 0, accepted: {}, status: {}, errors: 0 };
  const acceptedHuge = sentHuge.accepted[hugeRoom] ?? 0;
  const acceptedSmall = Object.values(sentSmall.accepted).reduce((a, b) => a + b, 0);

  // Drain: until every viewer has every accepted message, nothing moves for 10 s, or 60 s.
  const expected = acceptedHuge * joined;
  await drainDeliveries(
    async () => (await Promise.all(viewers.map((v) => ask(v.proc, 'progress', 'progress').then(Number)))).reduce((a, b) => a + b, 0),
    expected,
    { untilMs: sendsDone + 60_000, stallMs: 10_000 },
  );
  const t1 = Date.now();
  const windowS = (t1 - t0) / 1000;
  const cpu1 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) ?? 0]));
  const cpu = Object.fromEntries(
    Object.keys(pids).map((name) => {
      const s = (cpu1[name] as number) - (cpu0[name] as number);
      return [name, { cpuSeconds: round(s), percentOfCore: round((s / windowS) * 100, 1), rssMB: round(rssBytes(pids[name] as number) / 1048576, 1) }];
    }),
  );
  const loadCpu = round(loadProcs.reduce((n, p) => n + (cpuSeconds(p.child.pid as number) ?? 0), 0));

  const reports = await Promise.all(viewers.map(async (v) => ({ ...v, report: JSON.parse(await ask(v.proc, `report ${acceptedHuge}`, 'report')) as WorkerReport })));
  const latency = (filter: (r: (typeof reports)[number]) => boolean) => {
    const hist = new Map<number, number>();
    for (const r of reports.filter(filter)) for (const [ms, n] of r.report.hist) hist.set(ms, (hist.get(ms) ?? 0) + n);
    return { p50: percentile(hist, 0.5), p99: percentile(hist, 0.99) };
  };

  // Stored: each room's cursor counts its comments.
  const storedIn = async (room: string): Promise<number> => {
    const res = await fetch(`${front}/v1/rooms/${encodeURIComponent(room)}/messages?types=comment&limit=1`);
    return decodeCursor(((await res.json()) as { cursor: string }).cursor)?.comment ?? 0;
  };
  const storedHuge = await storedIn(hugeRoom);
  let storedSmall = 0;
  for (let i = 0; i < smallRooms.length; i += 20) storedSmall += (await Promise.all(smallRooms.slice(i, i + 20).map(storedIn))).reduce((a, b) => a + b, 0);
  const archive = new Archive(dbUrl.toString());
  let archivedHuge = 0;
  try {
    await waitFor(
      'the archive to catch up',
      async () => {
        const [rows] = await archive.pool.query('SELECT COUNT(*) AS n FROM messages WHERE room_id = ?', [hugeRoom]);
        archivedHuge = Number((rows as { n: number }[])[0]?.n ?? 0);
        return archivedHuge >= storedHuge;
      },
      15_000,
      500,
    ).catch(() => undefined);
  } finally {
    await archive.pool.query('DELETE FROM messages WHERE room_id = ? OR room_id LIKE ?', [hugeRoom, `ls-${run}-%`]).catch(() => undefined);
    await archive.close();
  }

  const pollSmall = done['poll small'] as Polled | undefined;
  const pollHuge = done['poll huge'] as Polled | undefined;
  const polls = (pollSmall?.polls ?? 0) + (pollHuge?.polls ?? 0);
  const deliveries = reports.reduce((n, r) => n + r.report.deliveries, 0);
  const lost = reports.reduce((n, r) => n + r.report.lost, 0);
  const duplicated = reports.reduce((n, r) => n + r.report.duplicates, 0);
  const serverCpu = Object.values(cpu).reduce((n, c) => n + c.cpuSeconds, 0);
  const summary = {
    seconds: SECONDS,
    windowSeconds: round(windowS),
    rooms: ROOMS,
    hugeRoom,
    viewers: { wanted: VIEWERS, joined, failed: joinFailed, byTransport: { 'socket.io': reports.filter((r) => r.transport === 'socket.io').reduce((n, r) => n + r.report.connected, 0), bilibili: reports.filter((r) => r.transport === 'bilibili').reduce((n, r) => n + r.report.connected, 0) } },
    sends: {
      huge: { rate: RATE_HUGE, attempted: sentHuge.attempted, accepted: acceptedHuge, stored: storedHuge, archived: archivedHuge, status: sentHuge.status, errors: sentHuge.errors },
      small: { rate: RATE_SMALL, attempted: sentSmall.attempted, accepted: acceptedSmall, stored: storedSmall, status: sentSmall.status, errors: sentSmall.errors },
    },
    deliveries,
    deliveriesPerSecond: Math.round(deliveries / windowS),
    deliveriesPerServerCpuSecond: Math.round(deliveries / Math.max(serverCpu, 0.01)),
    latencyMs: { all: latency((r) => r.probe), socketIo: latency((r) => r.probe && r.transport === 'socket.io'), bilibili: latency((r) => r.probe && r.transport === 'bilibili'), allViewers: latency(() => true) },
    polls: { total: polls, perSecond: round(polls / SECONDS, 1), small: pollSmall ?? null, huge: pollHuge ?? null },
    lost,
    duplicated,
    lostSends: Math.max(0, acceptedHuge - storedHuge) + Math.max(0, acceptedSmall - storedSmall),
    cpu,
    serverCpuSeconds: round(serverCpu),
    loadGeneratorCpuSeconds: loadCpu,
    loadAverage: { start: load0.map((n) => round(n)), end: loadavg().map((n) => round(n)) },
  };

  log(`\n| role | CPU s | % of a core | RSS MB |\n|---|---|---|---|`);
  for (const [name, c] of Object.entries(cpu)) log(`| ${name} | ${c.cpuSeconds} | ${c.percentOfCore} | ${c.rssMB} |`);
  log(`| all servers | ${round(serverCpu)} | ${round((serverCpu / windowS) * 100, 1)} | |`);
  log(`(load generators, not counted: ${loadCpu} CPU s; window ${round(windowS)} s)`);
  log(`\nsends: huge room ${acceptedHuge} accepted / ${storedHuge} stored / ${archivedHuge} archived; small rooms ${acceptedSmall} accepted / ${storedSmall} stored`);
  log(`huge room: ${deliveries} deliveries (${summary.deliveriesPerSecond}/s, ${summary.deliveriesPerServerCpuSecond} per server CPU-second); e2e at the probes p50/p99 ${summary.latencyMs.all.p50}/${summary.latencyMs.all.p99} ms (socket.io ${summary.latencyMs.socketIo.p50}/${summary.latencyMs.socketIo.p99}, Bilibili ${summary.latencyMs.bilibili.p50}/${summary.latencyMs.bilibili.p99})`);
  log(`polls: ${polls} (${summary.polls.perSecond}/s); small rooms ${JSON.stringify(pollSmall ?? {})}; huge room ${JSON.stringify(pollHuge ?? {})}`);
  log(`huge room lost ${lost}, duplicated ${duplicated}; sends lost ${summary.lostSends}: ${lost === 0 && duplicated === 0 && summary.lostSends === 0 ? 'nothing lost' : 'LOSS'}`);
  log(`results: ${writeResult('live-show', { settings: { seconds: SECONDS, rooms: ROOMS, roomPollers: ROOM_POLLERS, viewers: VIEWERS, hugePollers: HUGE_POLLERS, rateHuge: RATE_HUGE, rateSmall: RATE_SMALL, pollMs: POLL_MS, workers: WORKERS, probe: PROBE, nice: NICE }, summary })}`);
  if (lost !== 0 || duplicated !== 0 || summary.lostSends !== 0 || joined === 0) failed = true;
} catch (err) {
  failed = true;
  process.stderr.write(`live show failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  for (const [name, { proc }] of roles) if (proc.child.exitCode !== null) process.stderr.write(`--- ${name} (exited ${proc.child.exitCode}):\n${proc.output().slice(-3000)}\n`);
} finally {
  for (const p of loadProcs) p.child.stdin?.write('exit\n');
  await Promise.all(loadProcs.map((p) => Promise.race([p.kill('SIGTERM'), new Promise((r) => setTimeout(r, 3000))])));
  for (const p of loadProcs) await p.kill('SIGKILL');
  const stopping = [...roles.values()].reverse();
  await Promise.all(stopping.map(({ proc }) => Promise.race([proc.kill('SIGTERM'), new Promise((r) => setTimeout(r, 5000))])));
  for (const { proc } of stopping) await proc.kill('SIGKILL');
  await kafka?.stop();
  await redis?.stop();
}
process.exit(failed ? 1 : 0);
