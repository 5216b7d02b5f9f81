/**
 * `npm run bench -- fanout [--clients 2000] [--workers 4] [--heap] [--rate 200] [--seconds 10] [--merge 100] [--bigMerge 200] [--nice 10] [--probe 50] [--profile] [--only ours|ours-kafka|bili|bili-tcp|baseline] [--systems ours,ours-kafka,bili,baseline] [--protover 3] [--mode fanout|connections]`
 *
 * `bili` is the same server as `ours` with the clients on the Bilibili live protocol (WebSocket
 * /sub, brotli for --protover 3, zlib for 2) instead of socket.io: the two transports of the
 * connector measured in the same run; `bili-tcp` the same protocol on its raw TCP wire; `ours-kafka`
 * ours with an Apache Kafka broker as the server's bus (the broker's JVM counted as server CPU). `--mode connections` connects --clients idle clients on
 * each transport (no messages) and reports the connector's resident memory per connection.
 *
 * One big room, K socket.io clients spread over worker processes, R messages/s sent over HTTP for
 * a bounded time. Run twice on the same machine:
 *   ours:     front + processor + pusher (one process) -> Redis -> connector (its own process):
 *             broadcast mode, merged `messages` packets encoded once per room.
 *   baseline: one plain socket.io process that emits every message to the room as it arrives.
 * Prints deliveries/s, deliveries per server CPU-second, e2e latency p50/p99 (the bench's send
 * time, carried in the message text -> client receive), lost and duplicated; writes bench/results/fanout-latest.json (+ a timestamped
 * copy). Server CPU comes from /proc/PID/stat of the server processes (and the bench's private
 * Redis for ours). `--profile` runs the server and the connector under `node --cpu-prof` and
 * prints their top functions by self time (whole process lifetime, start-up included).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { randomInt } from 'node:crypto';
import { availableParallelism, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { REPO_ROOT, freePort, spawnTs, startKafka, startRedis, tokenFor, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { cpuSeconds } from './lib/cannon.js';
import { diff, formatDiff, summarize, type HeapDiffRow } from './lib/heap-diff.js';
import { printProfile } from './lib/profile.js';
import { writeResult } from './lib/report.js';
import { drainDeliveries, type WorkerReport } from './lib/worker-report.js';
import { BROKER_WARM_S, sendPaced, warmUp } from './lib/warm.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '2000' },
    workers: { type: 'string', default: '4' },
    rate: { type: 'string', default: '200' },
    seconds: { type: 'string', default: '10' },
    drain: { type: 'string', default: '30' },
    merge: { type: 'string', default: '100' },
    bigMerge: { type: 'string', default: '200' },
    nice: { type: 'string', default: '10' },
    probe: { type: 'string', default: '50' },
    profile: { type: 'boolean', default: false },
    only: { type: 'string', default: '' },
    systems: { type: 'string', default: 'ours,ours-kafka,bili,baseline' },
    protover: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'fanout' },
    /** Connections mode: seconds to wait after the clients closed before the last RSS reading. */
    settle: { type: 'string', default: '30' },
    /**
     * Connections mode: heap snapshots of the connector before the clients and with them (after
     * the RSS readings), diffed by constructor: what one connection keeps, object by object.
     */
    heap: { type: 'boolean', default: false },
    /**
     * Connections mode: this many clients connect and leave before the "before" reading, so it is
     * a connector that has seen a crowd (code compiled, start-up garbage collected), not a fresh one
     * whose start-up garbage the crowd's collection would take and hide some connections' cost behind.
     */
    warmup: { type: 'string', default: '1000' },
    /** Fan-out mode: sends to a room of no clients before the measured run (V8's and a broker's JIT warm-up). */
    warmSends: { type: 'string', default: '10000' },
    /**
     * Connections mode: seconds the idle crowd is held before the "with clients" reading (V8's
     * memory reducer compacts on its own some seconds after a burst; 3 reads before it); then the
     * crowd is counted from outside (`ss`) and one comment goes to the room holding all of them.
     */
    hold: { type: 'string', default: '3' },
    /** Extra node flags for the connector process (experiments: `--max-semi-space-size=2`). */
    connectorFlags: { type: 'string', default: '' },
    /**
     * Processes of the connector (DANMAKU_CONNECTOR_WORKERS): a number, or `auto` (one per CPU, or
     * more if the clients need them). Unset: one, or in connections mode as many as --clients needs
     * under one process's open-files limit.
     */
    'connector-workers': { type: 'string', default: '' },
    /** Connections mode, the ramp's ceilings: it stops opening clients past any of them and measures what it holds. */
    'max-seconds': { type: 'string', default: '900' },
    /** ... when the machine's MemAvailable falls under this many MB. */
    'min-available-mb': { type: 'string', default: '1536' },
    /** ... when more clients than this failed to connect (default: 1 % of --clients, at least 100). */
    'max-failures': { type: 'string', default: '' },
  },
});
/**
 * Open files one process may have: the hard limit scripts/bench.sh raised the soft one to. A
 * connector holds one descriptor per connection, so it bounds the crowd one connector can take;
 * raising it needs CAP_SYS_RESOURCE, which some machines (containers) do not give.
 */
function openFilesLimit(): number {
  const line = /^Max open files\s+(\S+)\s+(\S+)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
  const soft = line?.[1] === 'unlimited' ? Infinity : Number(line?.[1] ?? 1024);
  return soft;
}
const FILES = openFilesLimit();
// What one process needs besides its connections: listeners, Redis, logs, the runtime's own.
const FILE_MARGIN = 300;
const ASKED = Number(args.clients);
const PER_PROCESS = FILES - FILE_MARGIN;
/**
 * The connector's processes. Asked for, or enough for the crowd: the primary hands connections out
 * round robin but not exactly evenly (a worker busy with one takes the next later), so each is
 * planned at 80 % of what it may hold.
 */
function connectorWorkers(): number {
  const asked = String(args['connector-workers']);
  const needed = args.mode !== 'connections' || ASKED <= PER_PROCESS ? 1 : Math.ceil(ASKED / (PER_PROCESS * 0.8));
  if (asked === '') return needed;
  if (asked === 'auto') return Math.max(availableParallelism(), needed);
  const n = Number(asked);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--connector-workers: a positive integer or auto, got ${asked}`);
  return n;
}
const CONNECTOR_WORKERS = connectorWorkers();
const K = args.mode === 'connections' ? Math.min(ASKED, CONNECTOR_WORKERS * PER_PROCESS) : ASKED;
// Each worker holds its share of the clients' descriptors: enough workers that none passes the limit.
const W = Math.max(Number(args.workers), Math.ceil(K / (FILES - FILE_MARGIN)));
/**
 * Loopback source addresses for the clients, one per 5,000 (PER_SOURCE): a client bound to a
 * source address takes its port at bind(), before it knows the destination, so the port is its
 * own on that address whatever it connects to. Past about 7,000 per address the connects began to
 * fail at once (100,000 asked over 5 addresses stopped at 41-44k; 60,000 over 12 all connected);
 * 127.0.0.0/8 is all local, so more addresses cost nothing.
 */
const SOURCES = Array.from({ length: Math.max(1, Math.ceil(K / Number(process.env.PER_SOURCE ?? 5000))) }, (_, i) => `127.0.0.${i + 1}`);
const R = Number(args.rate);
const SECONDS = Number(args.seconds);
const DRAIN_S = Number(args.drain);
const PROBE = Math.min(Number(args.probe), K);
const MAX_SEQ = Math.ceil(R * SECONDS * 1.2) + 100;

interface RunResult {
  system: string;
  clients: number;
  joined: number;
  sent: number;
  seconds: number;
  deliveries: number;
  deliveriesPerSecond: number;
  serverCpuSeconds: number;
  cpuByProcess: Record<string, number>;
  /** The kernel's part (stime) of each process's CPU above. */
  sysByProcess: Record<string, number>;
  deliveriesPerServerCpuSecond: number;
  /** Deliveries per CPU-second of the fan-out process alone (connector for ours, the one process for the baseline). */
  deliveriesPerFanoutCpuSecond: number;
  packets: number;
  messagesPerPacket: number;
  /** Send (the bench's clock, in the message text) -> received, at the probe clients (normal priority). */
  latencyMs: { p50: number; p90: number; p99: number; max: number };
  /** The same over every client, the low-priority ones included (their own CPU wait counts). */
  allClientsLatencyMs: { p50: number; p90: number; p99: number; max: number };
  /** CPU of the client worker processes (not server CPU; shows when the clients are the bottleneck). */
  clientCpuSeconds: number;
  /** Ours: message ts -> emitted by the connector (its histogram): the server's share of the latency. */
  serverEmitDelay?: Record<string, number>;
  /** 1-minute load average before and after: this machine is shared; a busy one skews latency. */
  loadAverage: number[];
  lost: number;
  duplicates: number;
}

/** `ours-kafka`: ours (socket.io viewers) with an Apache Kafka broker for the server's bus; its JVM's CPU counts as server CPU. */
type System = 'ours' | 'ours-kafka' | 'bili' | 'bili-tcp' | 'baseline';

/** Kernel-side CPU seconds of a process (stime): on loopback a write also pays for the receiver's TCP work. */
function sysSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[12]) / 100;
  } catch {
    return 0;
  }
}

/** Resident memory of a process, bytes (Linux). */
function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024;
}

/** A process and its children (a connector's primary and its workers), read from /proc. */
function processTree(pid: number): number[] {
  let children: number[] = [];
  try {
    children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // Gone: no children to count.
  }
  return [pid, ...children];
}

/** Resident memory of the connector: its primary and every worker. */
function connectorRss(pid: number): number {
  return processTree(pid).reduce((sum, p) => {
    try {
      return sum + rssBytes(p);
    } catch {
      return sum;
    }
  }, 0);
}

/** The machine's MemAvailable (/proc/meminfo), bytes. */
function memAvailableBytes(): number {
  return Number(/MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) * 1024;
}

/** The client the workers run: ours over Kafka has the same socket.io viewers as ours. */
const workerKind = (system: System): string => (system === 'ours-kafka' ? 'ours' : system);

const profileFlags = (dir: string): string[] => ['--cpu-prof', `--cpu-prof-dir=${dir}`];


function percentile(hist: Map<number, number>, total: number, p: number): number {
  const target = total * p;
  let seen = 0;
  for (const ms of [...hist.keys()].sort((a, b) => a - b)) {
    seen += hist.get(ms) as number;
    if (seen >= target) return ms;
  }
  return 0;
}

/** Writes `command` to a client worker and returns the rest of the line it answers with `prefix`. */
async function askLine(worker: Spawned, command: string, prefix: string): Promise<string> {
  const before = worker.output().lastIndexOf(prefix);
  worker.child.stdin?.write(`${command}\n`);
  await waitFor(`worker ${command}`, () => worker.output().lastIndexOf(prefix) > before && worker.output().endsWith('\n'), 120_000, 10);
  const text = worker.output();
  const at = text.lastIndexOf(prefix);
  return text.slice(at + prefix.length, text.indexOf('\n', at));
}

async function progress(worker: Spawned): Promise<number> {
  return Number(await askLine(worker, 'progress', 'progress '));
}

async function report(worker: Spawned, sent: number): Promise<WorkerReport> {
  return JSON.parse(await askLine(worker, `report ${sent}`, 'report ')) as WorkerReport;
}

/** Sends `R` messages per second for SECONDS, a few requests in flight; returns how many were accepted. */
async function send(post: (i: number) => Promise<boolean>): Promise<number> {
  const total = R * SECONDS;
  const start = Date.now();
  let accepted = 0;
  let i = 0;
  const inFlight = new Set<Promise<void>>();
  // Bounded: a server that cannot keep up sends fewer, rather than the bench running forever.
  const stopAt = start + SECONDS * 3000;
  while (i < total && Date.now() < stopAt) {
    const due = Math.floor(((Date.now() - start) / 1000) * R);
    while (i < Math.min(due, total) && inFlight.size < 64) {
      const p: Promise<void> = post(i++).then(
        (ok) => {
          if (ok) accepted++;
          inFlight.delete(p);
        },
        () => {
          inFlight.delete(p);
        },
      );
      inFlight.add(p);
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  await Promise.all(inFlight);
  return accepted;
}

interface Started {
  room: string;
  procs: Spawned[];
  pids: Record<string, number>;
  clientUrl: string;
  connectorUrl: string | null;
  post: (i: number) => Promise<boolean>;
  /** A send to a room no client is in, to warm the servers (and a broker) before the measured sends. */
  postAside: (i: number) => Promise<boolean>;
  redisStop: (() => Promise<void>) | null;
  kafkaStop: (() => Promise<void>) | null;
  profileDir: string | null;
  /** Where the connector writes heap snapshots on SIGUSR2 (connections mode, --heap). */
  heapDir: string | null;
}

/** Starts one system's servers; `into` collects what to stop even when a step fails. */
async function startSystem(system: System, into: Started): Promise<void> {
  // Bilibili clients pick rooms by number.
  const room = system === 'bili' || system === 'bili-tcp' ? String(randomInt(100_000_000, 2_000_000_000)) : uniqueRoom('fanout');
  into.room = room;
  const { procs, pids } = into;
  let clientUrl: string;
  let connectorUrl: string | null = null;
  let post: (i: number) => Promise<boolean>;
  let postAside: (i: number) => Promise<boolean>;
  let profileDir: string | null = null;
  if (system !== 'baseline') {
    const redis = await startRedis();
    into.redisStop = redis.stop;
    const probe = new Redis(redis.url);
    pids.redis = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
    probe.disconnect();
    const env = {
      REDIS_URL: redis.url,
      LOG_LEVEL: 'warn',
      DANMAKU_CLUSTER: uniqueRoom('fanout-cluster'),
      DANMAKU_RATE_USER_MAX: '100000000',
      DANMAKU_RATE_IP_MAX: '100000000',
      DANMAKU_PUSH_MERGE_MS: String(args.merge),
      DANMAKU_PUSH_BIG_MERGE_MS: String(args.bigMerge),
      DANMAKU_RETENTION: '1000',
      // The bench needs no archive; the MySQL URL points nowhere useful only if MySQL is down.
    };
    let serverEnv: Record<string, string> = env;
    if (system === 'ours-kafka') {
      const kafka = await startKafka();
      into.kafkaStop = kafka.stop;
      pids.kafka = kafka.pid;
      serverEnv = { ...env, KAFKA_BROKERS: kafka.brokers.join(',') };
    }
    if (args.profile) {
      profileDir = join(REPO_ROOT, '.run', `fanout-prof-${Date.now()}`);
      mkdirSync(profileDir, { recursive: true });
    }
    const server = spawnTs('bench/fanout-server.ts', { ...serverEnv, PORT: '0' }, [], profileDir ? profileFlags(profileDir) : []);
    procs.push(server);
    await server.waitForOutput(/server listening on \S+/, 30_000);
    const serverUrl = /server listening on (\S+)/.exec(server.output())?.[1] as string;
    pids.server = server.child.pid as number;
    // The connector as scripts/role.sh runs it (malloc arenas, young generation, --expose-gc).
    // The Bilibili TCP wire on a free port (its default, 2243, may be taken by another connector).
    // Connections mode: info, for the connector's lines about its collections after a crowd (printed by the bench).
    const connectorEnv = {
      ...env,
      ...(args.mode === 'connections' ? { LOG_LEVEL: 'info' } : {}),
      CONNECTOR_PORT: '0',
      DANMAKU_BILI_TCP_PORT: String(await freePort()),
      DANMAKU_CONNECTOR_WORKERS: String(CONNECTOR_WORKERS),
      KAFKA_BROKERS: '',
      MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2',
    };
    if (args.heap && args.mode === 'connections') {
      into.heapDir = join(REPO_ROOT, '.run', `heap-${system}-${Date.now()}`);
      mkdirSync(into.heapDir, { recursive: true });
    }
    const heapFlags = into.heapDir ? ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${into.heapDir}`] : [];
    const connectorFlags = ['--expose-gc', '--max-semi-space-size=2', ...heapFlags, ...(profileDir ? profileFlags(profileDir) : []), ...String(args.connectorFlags).split(' ').filter(Boolean)];
    const connector = spawnTs('apps/connector/src/main.ts', connectorEnv, [], connectorFlags);
    procs.push(connector);
    // Several processes: the primary's line, once every worker serves.
    // Many workers start on few cores: a few seconds each, on top of the primary's.
    await connector.waitForOutput(CONNECTOR_WORKERS > 1 ? /connector primary of \d+ workers listening on \S+/ : /connector \S+ listening on \S+/, 60_000 + CONNECTOR_WORKERS * 5000);
    pids.connector = connector.child.pid as number;
    // Its workers' CPU counts as the connector's too.
    for (const [i, pid] of processTree(pids.connector).slice(1).entries()) pids[`connector-worker-${i + 1}`] = pid;
    // Clients ask the router, like the SDK does.
    const route = (await (await fetch(`${serverUrl}/v1/route?uid=bench`)).json()) as { mode: string; endpoints: string[]; bilibili?: { ws: string[]; tcp: string[] } };
    if (route.mode !== 'long' || !route.endpoints[0]) throw new Error(`router said ${JSON.stringify(route)}`);
    connectorUrl = route.endpoints[0];
    clientUrl = system === 'bili' ? (route.bilibili?.ws[0] ?? '') : system === 'bili-tcp' ? (route.bilibili?.tcp[0] ?? '') : connectorUrl;
    if (!clientUrl) throw new Error(`router named no Bilibili endpoint: ${JSON.stringify(route)}`);
    const token = tokenFor('bench-sender');
    const postTo = async (to: string, i: number) => {
      const res = await fetch(`${serverUrl}/v1/rooms/${to}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: `b ${Date.now()} ${i}` }),
      });
      await res.arrayBuffer();
      return res.status === 202;
    };
    post = (i) => postTo(room, i);
    postAside = (i) => postTo(`${room}-aside`, i);
  } else {
    const server = spawnTs('bench/fanout-baseline.ts', {});
    procs.push(server);
    await server.waitForOutput(/baseline listening on \S+/);
    const url = /baseline listening on (\S+)/.exec(server.output())?.[1] as string;
    pids.baseline = server.child.pid as number;
    clientUrl = url;
    const postTo = async (to: string, i: number) => {
      const res = await fetch(`${url}/send/${to}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: `b ${Date.now()} ${i}` }) });
      await res.arrayBuffer();
      return res.status === 202;
    };
    post = (i) => postTo(room, i);
    postAside = (i) => postTo(`${room}-aside`, i);
  }
  into.clientUrl = clientUrl;
  into.connectorUrl = connectorUrl;
  into.post = post;
  into.postAside = postAside;
  into.profileDir = profileDir;
}

/** Spawns the client workers (worker 0 the probe at normal priority) and waits until all joined. */
async function startWorkers(system: System, started: Started, maxSeq: number, burst = 50): Promise<{ workers: Spawned[]; joined: number }> {
  const workers = spawnWorkers(system, started, maxSeq, burst);
  let joined = 0;
  for (const worker of workers) {
    await worker.waitForOutput(/joined \d+ failed \d+/, 120_000);
    joined += Number(/joined (\d+)/.exec(worker.output())?.[1]);
  }
  return { workers, joined };
}

/** The client workers, connecting (each prints `joined N failed M` once its clients settled). */
function spawnWorkers(system: System, started: Started, maxSeq: number, burst: number): Spawned[] {
  const workers: Spawned[] = [];
  // Worker 0 is the probe: PROBE clients at normal priority, whose latency is the e2e figure.
  // The rest stand in for thousands of phones elsewhere: on this one machine they must not take
  // the CPU the servers need, so they run at a lower priority (both systems alike); their
  // latency includes their own wait for CPU and is reported separately.
  const sizes = [PROBE, ...Array.from({ length: W }, (_, w) => Math.floor((K - PROBE) / W) + (w < (K - PROBE) % W ? 1 : 0))];
  for (const [w, count] of sizes.entries()) {
    const worker = spawnTs('bench/fanout-worker.ts', { URL: started.clientUrl, ROOM: started.room, COUNT: String(count), KIND: workerKind(system), MAX_SEQ: String(maxSeq), PROTOVER: String(args.protover), BURST: String(burst), SOURCES: SOURCES.join(',') });
    if (w > 0 && worker.child.pid) setPriority(worker.child.pid, Number(args.nice));
    workers.push(worker);
    started.procs.push(worker);
  }
  return workers;
}

/** What the connections ramp reached, and what stopped it. */
interface RampResult {
  workers: Spawned[];
  joined: number;
  failed: number;
  /** `target` (every client joined or failed), or the ceiling that stopped it. */
  stoppedBy: string;
  seconds: number;
  minMemAvailableBytes: number;
}

/**
 * Opens the crowd as fast as the connector takes it, watching the ceilings once a second: the
 * machine's MemAvailable, connect errors, the time budget. Past one the client workers stop
 * opening clients (`halt`) and the crowd is what joined by then.
 */
async function ramp(system: System, started: Started): Promise<RampResult> {
  // Big bursts: the rate measured is the connector's, not the workers' pacing.
  const workers = spawnWorkers(system, started, 10, 200);
  const t0 = Date.now();
  const floor = Number(args['min-available-mb']) * 1048576;
  const maxFailures = args['max-failures'] ? Number(args['max-failures']) : Math.max(100, Math.ceil(K / 100));
  const maxMs = Number(args['max-seconds']) * 1000;
  const settledCount = (w: Spawned): [number, number] | null => {
    const m = /joined (\d+) failed (\d+)/.exec(w.output());
    return m ? [Number(m[1]), Number(m[2])] : null;
  };
  let stoppedBy = '';
  let minAvailable = memAvailableBytes();
  let lastLine = t0;
  let lastReading = t0;
  while (!workers.every(settledCount)) {
    // Settled is checked often (the connect rate's end), the ceilings once a second.
    await new Promise((r) => setTimeout(r, 100));
    if (Date.now() - lastReading < 1000) continue;
    lastReading = Date.now();
    const gone = workers.find((w) => w.child.exitCode !== null);
    if (gone) throw new Error(`a client worker exited during the ramp:\n${gone.output().slice(-2000)}`);
    const counts = await Promise.all(workers.map((w) => askLine(w, 'count', 'count ')));
    const joined = counts.reduce((n, c) => n + Number(c.split(' ')[0]), 0);
    const failed = counts.reduce((n, c) => n + Number(c.split(' ')[1]), 0);
    const available = memAvailableBytes();
    minAvailable = Math.min(minAvailable, available);
    const elapsed = Date.now() - t0;
    if (available < floor) stoppedBy = `MemAvailable ${Math.round(available / 1048576)} MB < ${args['min-available-mb']} MB`;
    else if (failed > maxFailures) stoppedBy = `${failed} connect errors (> ${maxFailures})`;
    else if (elapsed > maxMs) stoppedBy = `time budget (--max-seconds ${args['max-seconds']})`;
    if (Date.now() - lastLine >= 10_000 || stoppedBy) {
      lastLine = Date.now();
      process.stdout.write(`  ${system}: ramp ${joined} joined, ${failed} failed, MemAvailable ${Math.round(available / 1048576)} MB, ${Math.round(elapsed / 1000)} s\n`);
    }
    if (stoppedBy) {
      process.stdout.write(`  ${system}: ceiling: ${stoppedBy}; no more clients, waiting for those in flight\n`);
      for (const w of workers) w.child.stdin?.write('halt\n');
      // A connect stuck in SYN retries settles within the kernel's timeout; the crowd is what joined by then.
      await waitFor('the clients in flight to settle', () => workers.every(settledCount), 150_000, 250).catch(() => undefined);
      break;
    }
  }
  let joined = 0;
  let failed = 0;
  for (const w of workers) {
    const settled = settledCount(w);
    const [j, f] = settled ?? (await askLine(w, 'count', 'count ')).split(' ').map(Number);
    joined += j as number;
    failed += f as number;
  }
  return { workers, joined, failed, stoppedBy: stoppedBy || 'target', seconds: (Date.now() - t0) / 1000, minMemAvailableBytes: minAvailable };
}

async function stopSystem(started: Started): Promise<void> {
  // SIGTERM first so a profiled connector writes its profile on the way out.
  for (const p of started.procs.reverse()) await Promise.race([p.kill('SIGTERM'), new Promise((r) => setTimeout(r, 5000))]);
  for (const p of started.procs) await p.kill('SIGKILL');
  await started.redisStop?.();
  await started.kafkaStop?.();
  if (started.profileDir) printProfile(started.profileDir, started.pids, 20);
}

const emptyStarted = (): Started => ({ room: '', procs: [], pids: {}, clientUrl: '', connectorUrl: null, post: async () => false, postAside: async () => false, redisStop: null, kafkaStop: null, profileDir: null, heapDir: null });

interface IdleResult {
  system: System;
  clients: number;
  joined: number;
  /** Connector RSS before the clients and after they connected and settled. */
  rssBeforeBytes: number;
  rssAfterBytes: number;
  bytesPerConnection: number;
  /** Connections accepted and joined per second, from the first connect to the last join (clients connect as fast as they can, a few hundred in flight). */
  connectionsPerSecond: number;
  /** Kernel socket buffers are not in RSS: the machine-wide figure moved by this much. */
  kernelSockMemDeltaBytes: number;
  /** Connector RSS `settle` seconds after every client closed: memory that connections leave behind. */
  rssAfterCloseBytes: number;
  settleSeconds: number;
  /** The connector's own split of its memory (its /metrics), before the clients and with them (no collection forced). */
  memory: { before: MemorySplit; withClients: MemorySplit };
  /** Clients asked for; `clients` is fewer when the connector's processes may not open that many files. */
  asked: number;
  /** The connector's processes at the end (its primary and workers; 1 = a single process). */
  connectorProcesses: number;
  /** How the crowd was opened: what stopped it (`target`, or the ceiling hit), clients that failed, the lowest MemAvailable seen. */
  ramp: { stoppedBy: string; failed: number; seconds: number; minMemAvailableBytes: number };
  openFilesLimit: number;
  /** Established connections to the connector's port counted by `ss` after the hold. */
  ssEstablished?: number;
  /** The same by connector process (pid): how evenly its workers took the crowd. */
  ssByProcess?: Record<string, number>;
  /** One comment to the room holding every client, after the hold and the readings. */
  broadcast?: { heldSeconds: number; delivered: number; lost: number; duplicates: number; latencyMs: { p50: number; p99: number; max: number } };
  /** --heap: the same split after the snapshot's full collection, and the snapshot diff per connection. */
  heap?: { withClientsAfterGc: MemorySplit; liveBytesPerConnection: number; top: HeapDiffRow[] };
}

/** RSS as the connector sees it: V8's heap (used of total), memory outside it held by JS objects (Buffers), and the rest (code, malloc, stacks). */
interface MemorySplit {
  rssBytes: number;
  heapTotalBytes: number;
  heapUsedBytes: number;
  externalBytes: number;
  /** RSS minus the V8 heap's reserved size and external memory: native allocations, code, thread stacks. */
  restBytes: number;
}

async function memorySplit(connectorUrl: string): Promise<MemorySplit> {
  const text = await (await fetch(`${connectorUrl}/metrics`)).text();
  const read = (name: string): number => Number(new RegExp(`^${name} (\\S+)`, 'm').exec(text)?.[1] ?? 0);
  const rss = read('process_resident_memory_bytes');
  const heapTotal = read('nodejs_heap_size_total_bytes');
  const external = read('nodejs_external_memory_bytes');
  return { rssBytes: rss, heapTotalBytes: heapTotal, heapUsedBytes: read('nodejs_heap_size_used_bytes'), externalBytes: external, restBytes: rss - heapTotal - external };
}

/** Has the connector write a heap snapshot (SIGUSR2), and returns its path once complete. */
async function heapSnapshot(started: Started): Promise<string> {
  const dir = started.heapDir as string;
  const list = (): string[] => readdirSync(dir).filter((f) => f.endsWith('.heapsnapshot'));
  const before = new Set(list());
  process.kill(started.pids.connector as number, 'SIGUSR2');
  let file = '';
  await waitFor('a heap snapshot', () => (file = list().find((f) => !before.has(f)) ?? '') !== '', 60_000, 100);
  // The snapshot is written on the main thread: the connector answers again once it is whole.
  await fetch(`${started.connectorUrl}/metrics`).then((r) => r.arrayBuffer());
  return join(dir, file);
}

/** TCP memory the kernel holds (pages from /proc/net/sockstat), bytes. */
function kernelSockBytes(): number {
  const text = readFileSync('/proc/net/sockstat', 'utf8');
  return Number(/TCP:.* mem (\d+)/.exec(text)?.[1] ?? 0) * 4096;
}

/**
 * Established TCP connections whose local port is `port`, counted by `ss` (outside the bench's own
 * bookkeeping), and how many each process holds (a connector of several workers: its spread).
 */
function ssEstablished(port: number): { total: number; byPid: Record<string, number> } {
  const out = execFileSync('ss', ['-Htnp', 'state', 'established', `( sport = :${port} )`], { maxBuffer: 512 * 1048576, encoding: 'utf8' });
  const lines = out.split('\n').filter((l) => l.trim());
  const byPid: Record<string, number> = {};
  for (const line of lines) {
    const pid = /pid=(\d+)/.exec(line)?.[1] ?? '?';
    byPid[pid] = (byPid[pid] ?? 0) + 1;
  }
  return { total: lines.length, byPid };
}

/** The connector port the clients of `system` connect to. */
function clientPort(clientUrl: string): number {
  return Number(/:(\d+)(?:\/|$)/.exec(clientUrl)?.[1]);
}

/** The held crowd counted with `ss`, then one comment to the room: who got it, how fast. */
async function countThenBroadcast(system: System, started: Started, workers: Spawned[], joined: number, holdS: number): Promise<Pick<IdleResult, 'ssEstablished' | 'ssByProcess' | 'broadcast'>> {
  const { total: established, byPid } = ssEstablished(clientPort(started.clientUrl));
  const spread = Object.keys(byPid).length > 1 ? ` (by connector process: ${Object.values(byPid).sort((a, b) => b - a).join(', ')})` : '';
  process.stdout.write(`  ${system}: ss counts ${established} established connections on the connector's port${spread}\n`);
  const accepted = await started.post(1);
  if (!accepted) throw new Error('the comment to the crowd was not accepted');
  await drainDeliveries(async () => (await Promise.all(workers.map((w) => progress(w)))).reduce((a, b) => a + b, 0), joined, { untilMs: Date.now() + 60_000, stallMs: 10_000 });
  const reports = await Promise.all(workers.map((w) => report(w, 1)));
  const hist = new Map<number, number>();
  for (const r of reports) for (const [ms, n] of r.hist) hist.set(ms, (hist.get(ms) ?? 0) + n);
  const delivered = reports.reduce((n, r) => n + r.deliveries, 0);
  const broadcast = {
    heldSeconds: holdS,
    delivered,
    lost: reports.reduce((n, r) => n + r.lost, 0),
    duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
    latencyMs: { p50: percentile(hist, delivered, 0.5), p99: percentile(hist, delivered, 0.99), max: Math.max(0, ...hist.keys()) },
  };
  process.stdout.write(`  ${system}: one comment to all: delivered ${delivered}, lost ${broadcast.lost}, p50 ${broadcast.latencyMs.p50} ms, p99 ${broadcast.latencyMs.p99} ms\n`);
  return { ssEstablished: established, ssByProcess: byPid, broadcast };
}

/** Idle connections on one transport of our connector: resident memory per connection. */
async function runIdle(system: Exclude<System, 'baseline'>): Promise<IdleResult> {
  const started = emptyStarted();
  try {
    await startSystem(system, started);
    const warmup = Number(args.warmup);
    if (warmup > 0) {
      const worker = spawnTs('bench/fanout-worker.ts', { URL: started.clientUrl, ROOM: started.room, COUNT: String(warmup), KIND: workerKind(system), MAX_SEQ: '10', PROTOVER: String(args.protover), BURST: '200' });
      started.procs.push(worker);
      await worker.waitForOutput(/joined \d+ failed \d+/, 120_000);
      worker.child.stdin?.write('exit\n');
      await Promise.race([worker.kill('SIGTERM'), new Promise((r) => setTimeout(r, 5000))]);
      await waitFor('the warm-up connections to close', async () => {
        const text = await (await fetch(`${started.connectorUrl}/metrics`)).text();
        return !/^danmaku_connector_sessions\{[^}]*\} [1-9]/m.test(text);
      }, 60_000, 250).catch(() => undefined);
    }
    // A few seconds with nothing happening: what the connector does after a crowd comes or goes is done.
    await new Promise((r) => setTimeout(r, 3000));
    const pid = started.pids.connector as number;
    const rssBefore = connectorRss(pid);
    const memoryBefore = await memorySplit(started.connectorUrl as string);
    // The first snapshot's full collection comes after the RSS reading, so it does not move it.
    const beforeSnapshot = started.heapDir ? await heapSnapshot(started) : null;
    const kernelBefore = kernelSockBytes();
    const reached = await ramp(system, started);
    const { workers, joined } = reached;
    const connectSeconds = reached.seconds;
    process.stdout.write(`  ${system}: ${joined}/${K} idle clients connected in ${connectSeconds.toFixed(1)} s (${reached.failed} failed; stopped by: ${reached.stoppedBy})\n`);
    await new Promise((r) => setTimeout(r, Number(args.hold) * 1000));
    const rssAfter = connectorRss(pid);
    const withClients = await memorySplit(started.connectorUrl as string);
    let heap: IdleResult['heap'];
    if (started.heapDir && beforeSnapshot) {
      const afterSnapshot = await heapSnapshot(started);
      const withClientsAfterGc = await memorySplit(started.connectorUrl as string);
      const result = diff(summarize(beforeSnapshot), summarize(afterSnapshot), Math.max(joined, 1));
      process.stdout.write(`  ${system}: live heap per connection (snapshots before and with ${joined} clients, ${started.heapDir}):\n${formatDiff(result)}\n`);
      heap = { withClientsAfterGc, liveBytesPerConnection: Math.round(result.totalBytesPerConnection), top: result.rows.slice(0, 30).map((r) => ({ ...r, countPerConnection: round(r.countPerConnection, 3), bytesPerConnection: round(r.bytesPerConnection, 1) })) };
    }
    const held = await countThenBroadcast(system, started, workers, joined, Number(args.hold));
    const settle = Number(args.settle);
    for (const w of workers) w.child.stdin?.write('exit\n');
    await Promise.all(workers.map((w) => Promise.race([w.kill('SIGTERM'), new Promise((r) => setTimeout(r, 5000))])));
    await waitFor('the connector to see every connection close', async () => {
      const text = await (await fetch(`${started.connectorUrl}/metrics`)).text();
      return !/^danmaku_connector_sessions\{[^}]*\} [1-9]/m.test(text);
    }, 60_000, 250).catch(() => undefined);
    process.stdout.write(`  ${system}: clients closed; waiting ${settle} s for memory to come back\n`);
    await new Promise((r) => setTimeout(r, settle * 1000));
    const connector = started.procs.find((p) => p.child.pid === pid);
    for (const line of (connector?.output() ?? '').split('\n')) {
      if (/"msg":"collected/.test(line)) process.stdout.write(`  ${system}: connector ${line.replace(/.*"msg":"([^"]+)".*"pauseMs":(\d+).*/, '$1, $2 ms pause').replace(/.*"pauseMs":(\d+).*"msg":"([^"]+)".*/, '$2, $1 ms pause')}\n`);
    }
    const result: IdleResult = {
      system,
      clients: K,
      joined,
      rssBeforeBytes: rssBefore,
      rssAfterBytes: rssAfter,
      bytesPerConnection: Math.round((rssAfter - rssBefore) / Math.max(joined, 1)),
      connectionsPerSecond: Math.round(joined / Math.max(connectSeconds, 0.001)),
      kernelSockMemDeltaBytes: kernelSockBytes() - kernelBefore,
      rssAfterCloseBytes: connectorRss(pid),
      connectorProcesses: processTree(pid).length,
      ramp: { stoppedBy: reached.stoppedBy, failed: reached.failed, seconds: round(reached.seconds, 1), minMemAvailableBytes: reached.minMemAvailableBytes },
      settleSeconds: settle,
      asked: ASKED,
      openFilesLimit: FILES,
      ...held,
      memory: { before: memoryBefore, withClients },
      ...(heap ? { heap } : {}),
    };
    if (started.heapDir) rmSync(started.heapDir, { recursive: true, force: true });
    return result;
  } finally {
    await stopSystem(started);
  }
}

async function run(system: System): Promise<RunResult> {
  const started = emptyStarted();
  const { pids } = started;
  try {
    await startSystem(system, started);
    const { connectorUrl, post } = started;
    // Every system gets the same warm-up, to a room nobody is in.
    await warmUp(Number(args.warmSends), started.postAside);
    if (started.kafkaStop && BROKER_WARM_S > 0) await sendPaced(BROKER_WARM_S, R, started.postAside);
    const { workers, joined } = await startWorkers(system, started, MAX_SEQ);
    process.stdout.write(`  ${system}: ${joined}/${K} clients joined; sending ${R}/s for ${SECONDS}s\n`);
    // Let the subscriber counts reach the pusher (ours switches the room to broadcast).
    await new Promise((r) => setTimeout(r, 1500));

    const cpu0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) ?? 0]));
    const sys0 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, sysSeconds(pid)]));
    const clientCpu0 = workers.reduce((n, w) => n + (cpuSeconds(w.child.pid as number) ?? 0), 0);
    const load0 = loadavg()[0] as number;
    const t0 = Date.now();
    const sent = await send(post);
    // Drain: until every joined client has every message, or nothing moves for 5 s, or the limit.
    await drainDeliveries(async () => (await Promise.all(workers.map((w) => progress(w)))).reduce((a, b) => a + b, 0), sent * joined, {
      untilMs: Date.now() + DRAIN_S * 1000,
      stallMs: 5000,
    });
    const t1 = Date.now();
    const cpu1 = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, cpuSeconds(pid) ?? 0]));
    const sysByProcess = Object.fromEntries(Object.entries(pids).map(([name, pid]) => [name, round(sysSeconds(pid) - (sys0[name] as number), 2)]));
    const emitDelay = connectorUrl ? await scrapeHistogram(`${connectorUrl}/metrics`, 'danmaku_connector_emit_delay_seconds') : null;
    const clientCpu = workers.reduce((n, w) => n + (cpuSeconds(w.child.pid as number) ?? 0), 0) - clientCpu0;
    const reports = await Promise.all(workers.map((w) => report(w, sent)));

    const cpuByProcess = Object.fromEntries(Object.keys(pids).map((name) => [name, round((cpu1[name] as number) - (cpu0[name] as number), 2)]));
    const serverCpu = Object.values(cpuByProcess).reduce((a, b) => a + b, 0);
    const fanoutCpu = system === 'baseline' ? (cpuByProcess.baseline as number) : Object.entries(cpuByProcess).reduce((n, [name, cpu]) => (name.startsWith('connector') ? n + cpu : n), 0);
    const hist = new Map<number, number>();
    for (const r of reports) for (const [ms, n] of r.hist) hist.set(ms, (hist.get(ms) ?? 0) + n);
    const probeHist = new Map<number, number>((reports[0] as WorkerReport).hist);
    const probeDeliveries = (reports[0] as WorkerReport).deliveries;
    const deliveries = reports.reduce((n, r) => n + r.deliveries, 0);
    const packets = reports.reduce((n, r) => n + r.packets, 0);
    const seconds = (t1 - t0) / 1000;
    const result: RunResult = {
      system,
      clients: K,
      joined,
      sent,
      seconds: round(seconds, 2),
      deliveries,
      deliveriesPerSecond: Math.round(deliveries / seconds),
      serverCpuSeconds: round(serverCpu, 2),
      cpuByProcess,
      sysByProcess,
      deliveriesPerServerCpuSecond: Math.round(deliveries / Math.max(serverCpu, 0.01)),
      deliveriesPerFanoutCpuSecond: Math.round(deliveries / Math.max(fanoutCpu, 0.01)),
      packets,
      messagesPerPacket: round(deliveries / Math.max(packets, 1), 1),
      latencyMs: {
        p50: percentile(probeHist, probeDeliveries, 0.5),
        p90: percentile(probeHist, probeDeliveries, 0.9),
        p99: percentile(probeHist, probeDeliveries, 0.99),
        max: Math.max(0, ...probeHist.keys()),
      },
      allClientsLatencyMs: {
        p50: percentile(hist, deliveries, 0.5),
        p90: percentile(hist, deliveries, 0.9),
        p99: percentile(hist, deliveries, 0.99),
        max: Math.max(0, ...hist.keys()),
      },
      clientCpuSeconds: round(clientCpu, 2),
      ...(emitDelay ? { serverEmitDelay: emitDelay } : {}),
      loadAverage: [round(load0, 2), round(loadavg()[0] as number, 2)],
      lost: reports.reduce((n, r) => n + r.lost, 0),
      duplicates: reports.reduce((n, r) => n + r.duplicates, 0),
    };
    for (const w of workers) w.child.stdin?.write('exit\n');
    return result;
  } finally {
    await stopSystem(started);
  }
}


/** Cumulative share of observations per bucket (le -> fraction), from Prometheus text. */
async function scrapeHistogram(url: string, name: string): Promise<Record<string, number>> {
  const text = await (await fetch(url)).text();
  const buckets: [string, number][] = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\d+)`).exec(line);
    if (m) buckets.push([m[1] as string, Number(m[2])]);
  }
  const total = buckets.at(-1)?.[1] ?? 0;
  return Object.fromEntries(buckets.map(([le, n]) => [`<=${le}s`, total ? round(n / total, 3) : 0]));
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

const systems = (args.only ? [args.only] : String(args.systems).split(',')).filter((x): x is System => x === 'ours' || x === 'ours-kafka' || x === 'bili' || x === 'bili-tcp' || x === 'baseline');

if (args.mode === 'connections') {
  // Idle memory per connection on each transport of the connector (the baseline has no part here).
  if (args.heap && CONNECTOR_WORKERS > 1) throw new Error('--heap snapshots one connector process: use it with --connector-workers 1 (and --clients that one process may hold)');
  process.stdout.write(
    `connections: ${K} idle clients per transport over ${W} workers (+${PROBE} probe), from ${SOURCES.length} loopback source address(es); ` +
      `the connector runs ${CONNECTOR_WORKERS === 1 ? 'as one process' : `${CONNECTOR_WORKERS} worker processes behind one primary`}\n`,
  );
  if (K < ASKED && CONNECTOR_WORKERS > 1) {
    process.stdout.write(`  asked for ${ASKED}, but ${CONNECTOR_WORKERS} connector workers may open ${FILES} files each: measuring ${K} (more workers: --connector-workers, or leave it unset)\n`);
  } else if (K < ASKED) {
    process.stdout.write(
      `  asked for ${ASKED}, but one process may open ${FILES} files here (the hard limit; raising it needs CAP_SYS_RESOURCE), ` +
        `so one connector holds at most about ${FILES - FILE_MARGIN} connections: measuring ${K}\n`,
    );
  }
  const idle: IdleResult[] = [];
  for (const system of systems) if (system !== 'baseline') idle.push(await runIdle(system));
  process.stdout.write(
    `\n| transport | joined | conn/s | connector RSS before | with clients | ${args.settle} s after close | KB / connection | kernel TCP mem delta |\n|---|---|---|---|---|---|---|---|\n`,
  );
  for (const r of idle) {
    const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
    process.stdout.write(
      `| ${r.system === 'bili' ? 'bilibili ws' : r.system === 'bili-tcp' ? 'bilibili tcp' : 'socket.io'} | ${r.joined} | ${r.connectionsPerSecond} | ${mb(r.rssBeforeBytes)} | ${mb(r.rssAfterBytes)} | ${mb(r.rssAfterCloseBytes)} (${r.rssAfterCloseBytes >= r.rssBeforeBytes ? '+' : ''}${mb(r.rssAfterCloseBytes - r.rssBeforeBytes)}) | ${(r.bytesPerConnection / 1024).toFixed(1)} | ${mb(r.kernelSockMemDeltaBytes)} |\n`,
    );
  }
  for (const r of idle) {
    const per = (key: keyof MemorySplit, m: MemorySplit) => `${((m[key] - r.memory.before[key]) / Math.max(r.joined, 1) / 1024).toFixed(1)} KB`;
    const w = r.memory.withClients;
    process.stdout.write(
      `  ${r.system}: per connection, RSS ${per('rssBytes', w)} = V8 heap reserved ${per('heapTotalBytes', w)} (used ${per('heapUsedBytes', w)}, garbage included) + external ${per('externalBytes', w)} + the rest ${per('restBytes', w)}` +
        (r.heap ? `; after a full collection: heap used ${per('heapUsedBytes', r.heap.withClientsAfterGc)}, live objects ${(r.heap.liveBytesPerConnection / 1024).toFixed(1)} KB` : '') +
        '\n',
    );
  }
  process.stdout.write(`targets: <= 8 KB per connection on socket.io, <= 4 KB on the Bilibili protocol; RSS back near its start after close\n`);
  for (const r of idle) process.stdout.write(`  ${r.system}: ceiling ${r.joined} of ${r.asked} asked (${r.ramp.failed} failed), stopped by: ${r.ramp.stoppedBy}; lowest MemAvailable ${(r.ramp.minMemAvailableBytes / 1048576).toFixed(0)} MB; ${r.connectorProcesses} connector process(es)\n`);
  process.stdout.write(`results: ${writeResult('connections', { at: new Date().toISOString(), clients: K, workers: W, connectorWorkers: CONNECTOR_WORKERS, connectorFlags: args.connectorFlags, results: idle })}\n`);
  process.exit(0);
}

const results: RunResult[] = [];
process.stdout.write(`fanout: ${K} clients over ${W} workers, ${R} msg/s for ${SECONDS}s, merge ${args.merge} ms (rooms of ${K} sockets: ${args.bigMerge} ms); bili protover ${args.protover}\n`);
for (const system of systems) results.push(await run(system));

const row = (r: RunResult) =>
  `| ${r.system.padEnd(8)} | ${String(r.joined).padStart(6)} | ${String(r.sent).padStart(5)} | ${String(r.deliveriesPerSecond).padStart(10)} | ${String(r.deliveriesPerServerCpuSecond).padStart(12)} | ${String(r.deliveriesPerFanoutCpuSecond).padStart(12)} | ${String(r.serverCpuSeconds).padStart(7)} | ${String(r.latencyMs.p50).padStart(5)} | ${String(r.latencyMs.p99).padStart(6)} | ${String(r.lost).padStart(7)} | ${String(r.duplicates).padStart(5)} | ${String(r.messagesPerPacket).padStart(7)} |`;
process.stdout.write('\n| system   | joined |  sent | deliv./s   | per srv CPU-s | per fan-out CPU-s | CPU s | p50ms | p99 ms |    lost |  dups | msg/pkt |\n');
process.stdout.write('|---|---|---|---|---|---|---|---|---|---|---|---|\n');
for (const r of results) process.stdout.write(row(r) + '\n');
for (const r of results) {
  process.stdout.write(`  ${r.system}: latency over all clients (low-priority ones wait for CPU too) p50 ${r.allClientsLatencyMs.p50} ms, p99 ${r.allClientsLatencyMs.p99} ms\n`);
  if (r.serverEmitDelay) process.stdout.write(`  ${r.system}: share of packets emitted within (ts -> connector emit): ${JSON.stringify(r.serverEmitDelay)}\n`);
  process.stdout.write(
    `  ${r.system}: server CPU by process (s) ${JSON.stringify(r.cpuByProcess)}; client workers ${r.clientCpuSeconds} s over ${r.seconds} s; load ${r.loadAverage.join(' -> ')}\n`,
  );
}
const ours = results.find((r) => r.system === 'ours');
const oursKafka = results.find((r) => r.system === 'ours-kafka');
const bili = results.find((r) => r.system === 'bili');
const base = results.find((r) => r.system === 'baseline');
const summary: Record<string, unknown> = { at: new Date().toISOString(), clients: K, workers: W, rate: R, seconds: SECONDS, mergeMs: Number(args.merge), bigMergeMs: Number(args.bigMerge), biliProtover: Number(args.protover), results };
if (bili && ours) {
  summary.biliPerServerCpuSecondVsSocketIo = round(bili.deliveriesPerServerCpuSecond / Math.max(ours.deliveriesPerServerCpuSecond, 1), 2);
  process.stdout.write(
    `\nBilibili protocol / socket.io on the same connector, deliveries per server CPU-second: ${String(summary.biliPerServerCpuSecondVsSocketIo)}x; p99 ${bili.latencyMs.p99} ms vs ${ours.latencyMs.p99} ms\n`,
  );
}
if (ours && base) {
  const ratio = round(ours.deliveriesPerServerCpuSecond / Math.max(base.deliveriesPerServerCpuSecond, 1), 1);
  const fanoutRatio = round(ours.deliveriesPerFanoutCpuSecond / Math.max(base.deliveriesPerFanoutCpuSecond, 1), 1);
  summary.ratioPerServerCpuSecond = ratio;
  summary.ratioPerFanoutCpuSecond = fanoutRatio;
  summary.p99Better = ours.latencyMs.p99 <= base.latencyMs.p99;
  process.stdout.write(
    `\nours / baseline, deliveries per server CPU-second: ${ratio}x (fan-out process only: ${fanoutRatio}x); p99 ${ours.latencyMs.p99} ms vs ${base.latencyMs.p99} ms\n` +
      `targets: 10x baseline, 2,000,000 deliveries per server CPU-second, p99 < 300 ms\n`,
  );
}
if (oursKafka && base) {
  summary.kafkaRatioPerServerCpuSecond = round(oursKafka.deliveriesPerServerCpuSecond / Math.max(base.deliveriesPerServerCpuSecond, 1), 1);
  process.stdout.write(
    `ours over a Kafka broker / baseline, deliveries per server CPU-second (the broker's JVM included): ${String(summary.kafkaRatioPerServerCpuSecond)}x; p99 ${oursKafka.latencyMs.p99} ms\n`,
  );
}
process.stdout.write(`results: ${writeResult('fanout', summary)}\n`);
process.exit(0);
