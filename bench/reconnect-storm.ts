/**
 * `npm run bench -- reconnect-storm [--clients 10000] [--workers 4] [--rooms 100] [--sources 16] [--rate 50] [--connect-s 240] [--concurrency 10] [--budget-s 420]`
 *
 * A connector's death under 10,000 clients, on 127.0.0.1: a private Redis, the front, processor
 * and pusher (standalone without its connector) and three connector processes; the clients
 * (bench/lib/storm.ts: the SDK's routing and full-jitter backoff, joins that carry a cursor) in
 * worker processes, spread over 127.0.0.1..N source addresses, `--rate` comments/s into their
 * rooms throughout. Once all are joined, one connector is killed -9. Reported: reconnects per
 * second (peak and mean), where the clients that moved landed (per survivor), the time until all
 * were back (and per client p50/p99), failed connects, and Redis commands during the comeback
 * (INFO commandstats) beside the same span before the kill. Bounded by --budget-s. Writes
 * bench/results/reconnect-storm-<stamp>.json and -latest.json.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { createLogger } from '@danmaku/observability';
import { startStandalone } from '@danmaku/standalone';
import { spawnTs, startRedis, testConfig, tokenFor, uniqueRoom, waitFor, type Spawned } from '@danmaku/testkit';
import { httpAgent, sendComment } from './lib/load/clients.js';
import { writeResult } from './lib/report.js';
import { commandDelta, commandStats, summarise, type Comeback, type CommandCost } from './lib/storm.js';
import type { FromStormWorker, ToStormWorker } from './reconnect-storm-worker.js';

const { values: args } = parseArgs({
  options: {
    clients: { type: 'string', default: '10000' },
    workers: { type: 'string', default: '4' },
    rooms: { type: 'string', default: '100' },
    sources: { type: 'string', default: '16' },
    rate: { type: 'string', default: '50' },
    'budget-s': { type: 'string', default: '420' },
    /** How long the crowd may take to join; the storm then runs with those that did. */
    'connect-s': { type: 'string', default: '240' },
    /** Connects in flight per client process while the crowd joins (more overflows the connectors' accept queues). */
    concurrency: { type: 'string', default: '10' },
  },
});
const CLIENTS = Number(args.clients);
const WORKERS = Math.max(1, Number(args.workers));
const ROOMS = Number(args.rooms);
const SOURCES = Number(args.sources);
const RATE = Number(args.rate);
const deadline = Date.now() + Number(args['budget-s']) * 1000;
const left = (): number => Math.max(1000, deadline - Date.now());
const WORKER = fileURLToPath(new URL('./reconnect-storm-worker.ts', import.meta.url));
const log = (line: string): void => void process.stderr.write(`reconnect-storm: ${line}\n`);

// Everything on the private Redis below, whatever infrastructure `npm run bench` found running.
delete process.env.REDIS_CLUSTER_NODES;
delete process.env.KAFKA_BROKERS;
const redis = await startRedis();
const stats = new Redis(redis.url, { lazyConnect: false });
const cluster = uniqueRoom('storm');
const config = testConfig({ redisUrl: redis.url, cluster, rateUserMax: 1_000_000_000, rateIpMax: 1_000_000_000 });
const sys = await startStandalone(config, createLogger('standalone', 'warn'), { connector: false });
const connectors: { proc: Spawned; url: string }[] = [];
const workers: ChildProcess[] = [];
let sending = false;

async function cleanup(): Promise<void> {
  sending = false;
  for (const w of workers) if (w.connected) w.send({ t: 'exit' } satisfies ToStormWorker);
  await Promise.all(connectors.map((c) => c.proc.kill('SIGKILL')));
  await sys.stop().catch(() => undefined);
  stats.disconnect();
  await redis.stop();
}

try {
  for (let i = 0; i < 3; i++) {
    // As scripts/role.sh runs a connector.
    const proc = spawnTs('apps/connector/src/main.ts', { LOG_LEVEL: 'warn', CONNECTOR_PORT: '0', KAFKA_BROKERS: '', REDIS_URL: redis.url, DANMAKU_CLUSTER: cluster, MALLOC_ARENA_MAX: '2' }, [], ['--expose-gc', '--max-semi-space-size=2']);
    await proc.waitForOutput(/connector \S+ listening on \S+/);
    connectors.push({ proc, url: (/connector \S+ listening on (\S+)/.exec(proc.output()) as RegExpExecArray)[1] as string });
  }
  await waitFor('three connectors routed', async () => ((await (await fetch(`${sys.url}/v1/route?uid=probe`)).json()) as { endpoints: string[] }).endpoints.length === 3, 30_000);
  const rooms = Array.from({ length: ROOMS }, (_, r) => `${cluster}-${r}`);
  const agent = httpAgent(sys.url);
  const token = tokenFor('storm-sender');
  for (const room of rooms) await sendComment(sys.url, agent, room, token, 'before the storm');

  // ---------------------------------------------------------------- the crowd
  const where = new Map<number, string>();
  const comebacks = new Map<number, Comeback>();
  let killedUrl = '';
  /** Viewers whose route request failed (they never connected). */
  let unrouted = 0;
  let deliveries = 0;
  const failures: Record<string, number> = {};
  const onMessage = (msg: FromStormWorker): void => {
    if (msg.t === 'up') {
      where.set(msg.i, msg.endpoint);
      const c = comebacks.get(msg.i);
      if (c && c.backAt === null) {
        c.backAt = msg.at;
        c.endpoint = msg.endpoint;
      }
    } else if (msg.t === 'lost') {
      where.delete(msg.i);
      if (killedUrl && msg.endpoint === killedUrl && !comebacks.has(msg.i)) comebacks.set(msg.i, { lostAt: msg.at, backAt: null, endpoint: null, failures: 0 });
    } else if (msg.t === 'failed') {
      failures[msg.reason] = (failures[msg.reason] ?? 0) + 1;
      const c = comebacks.get(msg.i);
      if (c) c.failures++;
    } else if (msg.t === 'started') unrouted += msg.failed;
    else deliveries += msg.count;
  };
  const per = Math.ceil(CLIENTS / WORKERS);
  const connectStarted = Date.now();
  for (let k = 0; k < WORKERS; k++) {
    const child = fork(WORKER, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    child.on('message', onMessage);
    workers.push(child);
    const first = k * per;
    child.send({ t: 'start', baseUrl: sys.url, first, count: Math.max(0, Math.min(per, CLIENTS - first)), rooms, sources: SOURCES, concurrency: Number(args.concurrency) } satisfies ToStormWorker);
  }
  const progress = setInterval(() => log(`${where.size}/${CLIENTS} joined`), 5000);
  // On a machine too busy to take them all within the window, the storm runs with those that joined.
  let allJoined = true;
  await waitFor('every client joined', () => where.size + unrouted === CLIENTS, Math.min(Number(args['connect-s']) * 1000, left()), 100)
    .catch(() => (allJoined = false))
    .finally(() => clearInterval(progress));
  const connectMs = Date.now() - connectStarted;
  const joined = where.size;
  const before: Record<string, number> = {};
  for (const url of where.values()) before[url] = (before[url] ?? 0) + 1;
  log(`${joined}/${CLIENTS} joined in ${connectMs} ms (${unrouted} got no route): ${JSON.stringify(before)}`);

  // Comments into the rooms throughout, so a client back with its cursor has something to catch up.
  sending = true;
  let sent = 0;
  let acked = 0;
  const sender = (async () => {
    const every = 1000 / RATE;
    const t0 = Date.now();
    while (sending) {
      const room = rooms[sent % rooms.length] as string;
      sent++;
      void sendComment(sys.url, agent, room, token, `storm ${sent}`).then((r) => r.status === 202 && acked++);
      const wait = t0 + sent * every - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();

  // Redis over a quiet span (the same rate of comments, nobody reconnecting), then the storm.
  const QUIET_MS = 5000;
  const quiet0 = await commandStats(() => stats.info('commandstats'));
  await new Promise((resolve) => setTimeout(resolve, QUIET_MS));
  const quiet1 = await commandStats(() => stats.info('commandstats'));

  const victim = connectors[0] as { proc: Spawned; url: string };
  killedUrl = victim.url;
  const moved = before[victim.url] ?? 0;
  const storm0 = await commandStats(() => stats.info('commandstats'));
  const killedAt = Date.now();
  await victim.proc.kill('SIGKILL');
  log(`killed ${victim.url} (${moved} clients) -9`);
  const stormProgress = setInterval(() => log(`${[...comebacks.values()].filter((c) => c.backAt !== null).length}/${moved} back`), 2000);
  let allBack = true;
  await waitFor('every moved client back', () => comebacks.size === moved && [...comebacks.values()].every((c) => c.backAt !== null), Math.min(180_000, left()), 50)
    .catch(() => (allBack = false))
    .finally(() => clearInterval(stormProgress));
  const stormMs = Date.now() - killedAt;
  const storm1 = await commandStats(() => stats.info('commandstats'));
  sending = false;
  await sender;

  const summary = summarise(killedAt, [...comebacks.values()]);
  const after: Record<string, number> = {};
  for (const url of where.values()) after[url] = (after[url] ?? 0) + 1;
  const stormRedis = commandDelta(storm0, storm1);
  const quietRedis = commandDelta(quiet0, quiet1);
  const total = (d: Record<string, CommandCost>): CommandCost => Object.values(d).reduce((a, c) => ({ calls: a.calls + c.calls, usec: a.usec + c.usec }), { calls: 0, usec: 0 });
  const perSecond = (c: CommandCost, ms: number): CommandCost => ({ calls: Math.round((c.calls * 1000) / ms), usec: Math.round((c.usec * 1000) / ms) });
  const redisSummary = {
    stormMs,
    quietMs: QUIET_MS,
    storm: { total: total(stormRedis), perSecond: perSecond(total(stormRedis), stormMs), byCommand: stormRedis },
    quiet: { total: total(quietRedis), perSecond: perSecond(total(quietRedis), QUIET_MS), byCommand: quietRedis },
    /** Commands above the quiet rate over the storm, per client that came back. */
    extraCallsPerMovedClient: summary.back > 0 ? Math.round(((total(stormRedis).calls - (total(quietRedis).calls * stormMs) / QUIET_MS) / summary.back) * 10) / 10 : null,
  };
  const lines = [
    `reconnect storm: ${CLIENTS} socket.io clients on 3 connectors (${WORKERS} client processes, ${SOURCES} source addresses), ${RATE} comments/s into ${ROOMS} rooms`,
    `  ${joined} of ${CLIENTS} joined${allJoined ? '' : ` (the rest not within ${args['connect-s']} s; ${unrouted} got no route)`} in ${connectMs} ms: ${Object.values(before).join(' / ')} per connector`,
    `  killed -9: ${victim.url} with ${moved} clients`,
    `  back: ${summary.back}/${summary.moved}${allBack ? '' : ' (NOT ALL)'}; all back after ${summary.allBackMs ?? '-'} ms (p50 ${summary.backP50Ms} ms, p99 ${summary.backP99Ms} ms)`,
    `  reconnects/s: peak ${summary.reconnectsPerSecPeak}, mean ${summary.reconnectsPerSecMean}; busiest 100 ms held ${Math.round(summary.peak100msShare * 1000) / 10} % of them; per second: ${summary.perSecond.join(' ')}`,
    `  landed on: ${Object.entries(summary.spread).map(([url, n]) => `${url} ${n} (${Math.round((n / Math.max(1, summary.back)) * 100)} %)`).join(', ')}`,
    `  failed connects on the way: ${summary.failedConnects} ${JSON.stringify(failures)}`,
    `  Redis over the ${stormMs} ms of the comeback: ${redisSummary.storm.perSecond.calls} commands/s (${redisSummary.storm.perSecond.usec} us CPU/s) vs ${redisSummary.quiet.perSecond.calls}/s (${redisSummary.quiet.perSecond.usec} us/s) before; ${redisSummary.extraCallsPerMovedClient} extra commands per client back; top: ${Object.entries(stormRedis).slice(0, 6).map(([c, d]) => `${c} ${d.calls}`).join(', ')}`,
    `  comments: ${sent} sent, ${acked} acked; ${deliveries} deliveries to the clients`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(
    `results: ${writeResult('reconnect-storm', {
      settings: { clients: CLIENTS, workers: WORKERS, rooms: ROOMS, sources: SOURCES, rate: RATE, connectors: 3 },
      joined,
      allJoined,
      unrouted,
      connectMs,
      before,
      after,
      killed: victim.url,
      allBack,
      summary,
      redis: redisSummary,
      comments: { sent, acked, deliveries },
      text: lines.join('\n'),
    })}\n`,
  );
} finally {
  await cleanup();
}
process.exit(0);
