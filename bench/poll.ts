/**
 * npm run bench -- poll: polls of a big room (served from the front's local cache) against polls
 * of a small room (each one a Redis read), beside two Fastify baselines, in one run: hello-world,
 * and the same Fastify server answering `GET /static` with the very bytes and content type of the
 * cached answer (what serving a ready string costs, 3.7 KB instead of 17 bytes).
 * Every server is a child process on 127.0.0.1; autocannon runs here, bounded in time.
 * Targets: cached >= 4x uncached req/s, and >= 80 % of the hello-world baseline.
 * Then many small rooms (BENCH_SMALL_ROOMS, 200), each polled every 500 ms with comments flowing
 * (one per 20 polls), on a private Redis: Redis commands per poll from the front's memory and on
 * the Redis path (the memory off), beside each other.
 * Knobs: BENCH_DURATION_S (10 per run), BENCH_ROUNDS (3), BENCH_CONNECTIONS (50), BENCH_POLL_MESSAGES (10 per answer), BENCH_SMALL_ROOMS (200).
 * `--profile` runs the server under `node --cpu-prof` and prints its top functions at the end.
 */
import { createAuth } from '@danmaku/auth';
import { loadConfig } from '@danmaku/config';
import { decodeCursor, encodeCursor } from '@danmaku/protocol';
import { measurePollCost, startRedis, uniqueRoom, type PollCost } from '@danmaku/testkit';
import { Redis } from 'ioredis';
import { benchSettings, runLoad, type LoadResult } from './lib/cannon.js';
import { printTable, ratio, writeResult } from './lib/report.js';
import { printProfile, profileDir } from './lib/profile.js';
import { startHelloServer, startStandaloneServer } from './lib/servers.js';

const { durationS, connections } = benchSettings();
const perAnswer = Number(process.env.BENCH_POLL_MESSAGES ?? 10);
const roundsWanted = Math.min(5, Math.max(1, Number(process.env.BENCH_ROUNDS ?? 3)));
const SEEDED = 200;
const BIG_ONLINE = 50;

// The server's settings for this run: big rooms by online count only, so the small room stays
// uncached however hard it is polled, and a span long enough that the seeded comments stay fresh.
// Its small-room memory is off, so the small-room row is the Redis path (the many-small-rooms
// row below measures the memory).
const serverEnv = {
  DANMAKU_POLL_MEMORY_STREAMS: '0',
  DANMAKU_BIG_ROOM_ONLINE: String(BIG_ONLINE),
  DANMAKU_BIG_ROOM_POLL_RATE: '1000000000',
  DANMAKU_BIG_ROOM_SPAN_MS: '3600000',
  DANMAKU_BIG_ROOM_POLL_LIMIT: '50',
  DANMAKU_RATE_USER_MAX: '1000000000',
  DANMAKU_RATE_IP_MAX: '1000000000',
};
const config = loadConfig({ ...process.env, ...serverEnv });
const auth = createAuth(config.jwtSecret);
const run = Date.now().toString(36);
const bigRoom = `bench-big-${run}`;
const smallRoom = `bench-small-${run}`;

async function metric(url: string, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(pattern.exec(text)?.[1] ?? 0);
}

async function seed(url: string): Promise<void> {
  const token = auth.sign({ sub: 'bench-writer', name: 'Bench', role: 'viewer' });
  for (const room of [bigRoom, smallRoom]) {
    for (let i = 0; i < SEEDED; i += 20) {
      await Promise.all(
        Array.from({ length: 20 }, async (_, k) => {
          const res = await fetch(`${url}/v1/rooms/${room}/messages`, {
            method: 'POST',
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: JSON.stringify({ type: 'comment', content: `seed ${i + k}` }),
          });
          if (res.status !== 202) throw new Error(`seed send answered ${res.status}: ${await res.text()}`);
        }),
      );
    }
  }
  // The big room is big because many viewers are in it.
  await Promise.all(
    Array.from({ length: BIG_ONLINE + 10 }, async (_, i) => {
      const viewer = auth.sign({ sub: `bench-viewer-${i}`, name: `V${i}`, role: 'viewer' });
      const res = await fetch(`${url}/v1/rooms/${bigRoom}/enter`, { method: 'POST', headers: { authorization: `Bearer ${viewer}` } });
      if (res.status !== 200) throw new Error(`enter answered ${res.status}`);
    }),
  );
  const deadline = Date.now() + 20_000;
  for (;;) {
    // The cursor tells how many comments are stored (a big room caps its answer, not its cursor).
    const stored = await Promise.all(
      [bigRoom, smallRoom].map(async (room) => ((await (await fetch(`${url}/v1/rooms/${room}/messages?types=comment&limit=200`)).json()) as { cursor: string }).cursor),
    );
    const before = await metric(url, /danmaku_polls_total\{source="cache"\} (\d+)/);
    await fetch(`${url}/v1/rooms/${bigRoom}/messages?types=comment`);
    const cached = (await metric(url, /danmaku_polls_total\{source="cache"\} (\d+)/)) > before;
    if (cached && stored.every((c) => c === encodeCursor({ comment: SEEDED }))) return;
    if (Date.now() > deadline) throw new Error('the seeded rooms did not become ready (messages stored, big room cached) in 20 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** How many of `b`'s requests the CPU of one of `a`'s buys (a's us / b's us); null when unmeasured. */
function cpuRatio(a: LoadResult, b: LoadResult): number | null {
  if (a.serverCpuUsPerReq === null || b.serverCpuUsPerReq === null || b.serverCpuUsPerReq === 0) return null;
  return Math.round((a.serverCpuUsPerReq / b.serverCpuUsPerReq) * 100) / 100;
}

const profiling = process.argv.includes('--profile') ? profileDir('poll') : null;
const server = await startStandaloneServer(serverEnv, profiling?.flags);
// Started once the cached answer is known (it is handed over in the baseline's environment).
let hello: Awaited<ReturnType<typeof startHelloServer>> | null = null;
try {
  process.stdout.write(`poll bench: ${roundsWanted} rounds of 4 runs, ${durationS} s per run, ${connections} connections, ${perAnswer} comments per answer\n`);
  await seed(server.url);
  // A client's ordinary poll: the default types (comment, gift, enter, system) and a cursor
  // `perAnswer` comments behind the newest, up to date on the other types.
  const cursors = new Map<string, string>();
  for (const room of [bigRoom, smallRoom]) {
    const enterPage = (await (await fetch(`${server.url}/v1/rooms/${room}/messages?types=enter&limit=1`)).json()) as { cursor: string };
    const enterSeq = decodeCursor(enterPage.cursor)?.enter ?? 0;
    cursors.set(room, encodeCursor({ comment: SEEDED - perAnswer, gift: 0, enter: enterSeq, system: 0 }));
  }
  const pollUrl = (room: string) => `${server.url}/v1/rooms/${room}/messages?cursor=${cursors.get(room)}`;
  for (const room of [bigRoom, smallRoom]) {
    const check = (await (await fetch(pollUrl(room))).json()) as { messages: unknown[] };
    if (check.messages.length !== perAnswer) throw new Error(`expected ${perAnswer} messages per answer in ${room}, got ${check.messages.length}`);
  }
  const answer = await fetch(pollUrl(bigRoom));
  const staticBody = await answer.text();
  hello = await startHelloServer({ HELLO_STATIC_BODY: staticBody, HELLO_STATIC_TYPE: answer.headers.get('content-type') ?? 'application/json' });
  const staticCheck = await fetch(`${hello.url}/static`);
  if ((await staticCheck.text()) !== staticBody || staticCheck.headers.get('content-type') !== answer.headers.get('content-type')) {
    throw new Error('the baseline server does not answer /static with the cached answer');
  }
  const helloServer = hello;

  // Redis CPU per poll too: saving the Redis servers is what the local cache is for.
  const redis = new Redis(config.redisUrl);
  const redisCpu = async (): Promise<number> => {
    const info = await redis.info('cpu');
    return Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? 0) + Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? 0);
  };
  const redisUsPerReq = async (run: () => Promise<LoadResult>): Promise<LoadResult & { redisCpuUsPerReq: number }> => {
    const before = await redisCpu();
    const result = await run();
    return { ...result, redisCpuUsPerReq: Math.round((((await redisCpu()) - before) / Math.max(1, result.requests)) * 1e6) };
  };
  // Rounds of (baseline, cached, uncached), interleaved so that a burst of other load on a shared
  // machine hits all three alike; each kind reports its best round (all rounds are in the JSON).
  type Kind = 'baseline' | 'static' | 'cached' | 'uncached';
  const rounds: Record<Kind, (LoadResult & { redisCpuUsPerReq?: number })[]> = { baseline: [], static: [], cached: [], uncached: [] };
  let servedFromCache = 0;
  let servedFromRedis = 0;
  for (let round = 0; round < roundsWanted; round++) {
    rounds.baseline.push(await runLoad({ name: 'hello-world (Fastify baseline)', url: `${helloServer.url}/`, connections, durationS, serverPid: helloServer.pid }));
    rounds.static.push(await runLoad({ name: 'same bytes, static (Fastify)', url: `${helloServer.url}/static`, connections, durationS, serverPid: helloServer.pid }));
    const cacheBefore = await metric(server.url, /danmaku_polls_total\{source="cache"\} (\d+)/);
    rounds.cached.push(await redisUsPerReq(() => runLoad({ name: 'poll big room (local cache)', url: pollUrl(bigRoom), connections, durationS, serverPid: server.pid })));
    servedFromCache += (await metric(server.url, /danmaku_polls_total\{source="cache"\} (\d+)/)) - cacheBefore;
    const redisBefore = await metric(server.url, /danmaku_polls_total\{source="redis"\} (\d+)/);
    rounds.uncached.push(await redisUsPerReq(() => runLoad({ name: 'poll small room (Redis)', url: pollUrl(smallRoom), connections, durationS, serverPid: server.pid })));
    servedFromRedis += (await metric(server.url, /danmaku_polls_total\{source="redis"\} (\d+)/)) - redisBefore;
  }
  redis.disconnect();
  const best = (kind: Kind) => rounds[kind].reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
  const baseline = best('baseline');
  const staticRun = best('static');
  const cached = best('cached') as LoadResult & { redisCpuUsPerReq: number };
  const uncached = best('uncached') as LoadResult & { redisCpuUsPerReq: number };
  // The static run last: readers that find runs by position take the first three as before.
  const results: LoadResult[] = [baseline, cached, uncached, staticRun];
  printTable(`GET /v1/rooms/:roomId/messages (best of ${roundsWanted} rounds)`, results, baseline);
  const summary = {
    cachedVsUncached: ratio(cached, uncached),
    cachedVsBaseline: ratio(cached, baseline),
    uncachedVsBaseline: ratio(uncached, baseline),
    // The same bytes from a bare Fastify route: the ceiling for a ready answer of this size.
    staticCpuUs: staticRun.serverCpuUsPerReq,
    staticPerS: staticRun.reqPerSec,
    cachedVsStatic: ratio(cached, staticRun),
    // By CPU per request (steadier than req/s on a shared machine): static us / cached us.
    cachedVsStaticCpu: cpuRatio(staticRun, cached),
    cachedVsBaselineCpu: cpuRatio(baseline, cached),
    targets: { cachedVsUncached: 4, cachedVsBaseline: 0.8 },
    // Proof the runs took the intended paths: server-side counts of polls by source.
    servedFromCache,
    servedFromRedis,
  };
  // Many small rooms: what their polls cost Redis, from memory and on the Redis path.
  const smallRooms = Math.max(1, Number(process.env.BENCH_SMALL_ROOMS ?? 200));
  const smallPolls = Math.round(smallRooms * 2 * durationS);
  const privateRedis = await startRedis();
  const smallRun = async (memory: boolean): Promise<PollCost> => {
    const env = { ...serverEnv, REDIS_URL: privateRedis.url, DANMAKU_POLL_MEMORY_STREAMS: memory ? '20000' : '0', DANMAKU_GEAR_UP_MS: '600000' };
    const small = await startStandaloneServer(env);
    try {
      const rooms = Array.from({ length: smallRooms }, (_, i) => uniqueRoom(`bench-many-${memory ? 'mem' : 'redis'}-${i}`));
      return await measurePollCost({ url: small.url, redisUrl: privateRedis.url, token: auth.sign({ sub: 'bench-flow', name: 'Flow', role: 'viewer' }), rooms, polls: smallPolls });
    } finally {
      await small.stop();
    }
  };
  let manySmall: { rooms: number; memory: PollCost; redis: PollCost };
  try {
    manySmall = { rooms: smallRooms, memory: await smallRun(true), redis: await smallRun(false) };
  } finally {
    await privateRedis.stop();
  }
  const costOf = (c: PollCost) => ({ polls: c.polls, comments: c.comments, seconds: c.seconds, redisCommandsPerPoll: Math.round(c.perPoll * 1000) / 1000 });
  const manySmallSummary = { rooms: manySmall.rooms, memory: costOf(manySmall.memory), redisPath: costOf(manySmall.redis), target: 0.1 };
  process.stdout.write(
    `\nmany small rooms (${smallRooms}, each polled every 500 ms, a comment per 20 polls): Redis commands per poll ${manySmallSummary.memory.redisCommandsPerPoll} from memory ` +
      `(${manySmall.memory.polls} polls, ${manySmall.memory.comments} comments; target <= 0.1), ${manySmallSummary.redisPath.redisCommandsPerPoll} on the Redis path (${manySmall.redis.polls} polls)\n`,
  );

  const met = summary.cachedVsUncached >= summary.targets.cachedVsUncached && summary.cachedVsBaseline >= summary.targets.cachedVsBaseline;
  process.stdout.write(
    `\ncached / uncached = ${summary.cachedVsUncached}x (target >= ${summary.targets.cachedVsUncached}x), cached / hello-world = ${Math.round(summary.cachedVsBaseline * 100)} % (target >= ${summary.targets.cachedVsBaseline * 100} %): ${met ? 'targets met' : 'TARGETS MISSED'}\n` +
      `by server CPU per request: cached / hello-world = ${Math.round((summary.cachedVsBaselineCpu ?? 0) * 100)} %, cached / same bytes static = ${Math.round((summary.cachedVsStaticCpu ?? 0) * 100)} % (${cached.serverCpuUsPerReq} vs ${baseline.serverCpuUsPerReq} and ${staticRun.serverCpuUsPerReq} us)\n` +
      `Redis CPU per poll: ${cached.redisCpuUsPerReq} us cached (background refreshes only), ${uncached.redisCpuUsPerReq} us uncached\n` +
      `server counted ${summary.servedFromCache} polls from the cache during the cached run and ${summary.servedFromRedis} from Redis during the uncached run\n`,
  );
  const path = writeResult('poll', { settings: { durationS, connections, perAnswer, rounds: roundsWanted, serverEnv }, results, rounds, summary, manySmallRooms: manySmallSummary, targetsMet: met });
  process.stdout.write(`results: ${path}\n`);
} finally {
  await server.stop();
  await hello?.stop();
}
// Written as the server exited: its busy time is the three kinds of run together.
if (profiling) printProfile(profiling.dir, { standalone: server.pid });
process.exit(0);
