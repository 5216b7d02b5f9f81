/**
 * npm run bench -- poll: polls of a big room (served from the front's local cache) against polls
 * of a small room (each one a Redis read), beside a Fastify hello-world baseline, in one run.
 * Every server is a child process on 127.0.0.1; autocannon runs here, bounded in time.
 * Targets (issue 3): cached >= 3x uncached req/s, and >= 70 % of the hello-world baseline.
 * Knobs: BENCH_DURATION_S (10), BENCH_CONNECTIONS (50), BENCH_POLL_MESSAGES (10 per answer).
 */
import { createAuth } from '@danmaku/auth';
import { loadConfig } from '@danmaku/config';
import { encodeCursor } from '@danmaku/model';
import { benchSettings, runLoad, type LoadResult } from './lib/cannon.js';
import { printTable, ratio, writeResult } from './lib/report.js';
import { startHelloServer, startStandaloneServer } from './lib/servers.js';

const { durationS, connections } = benchSettings();
const perAnswer = Number(process.env.BENCH_POLL_MESSAGES ?? 10);
const SEEDED = 200;
const BIG_ONLINE = 50;

// The server's settings for this run: big rooms by online count only, so the small room stays
// uncached however hard it is polled, and a span long enough that the seeded comments stay fresh.
const serverEnv = {
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

const hello = await startHelloServer();
const server = await startStandaloneServer(serverEnv);
try {
  process.stdout.write(`poll bench: ${durationS} s per run, ${connections} connections, ${perAnswer} comments per answer\n`);
  await seed(server.url);
  // The same request for both rooms: types comment+gift, a cursor `perAnswer` comments behind.
  const cursor = encodeCursor({ comment: SEEDED - perAnswer, gift: 0 });
  const pollUrl = (room: string) => `${server.url}/v1/rooms/${room}/messages?types=comment,gift&cursor=${cursor}`;
  const check = (await (await fetch(pollUrl(bigRoom))).json()) as { messages: unknown[] };
  if (check.messages.length !== perAnswer) throw new Error(`expected ${perAnswer} messages per answer, got ${check.messages.length}`);

  const results: LoadResult[] = [];
  results.push(await runLoad({ name: 'hello-world (Fastify baseline)', url: `${hello.url}/`, connections, durationS, serverPid: hello.pid }));
  const cacheBefore = await metric(server.url, /danmaku_polls_total\{source="cache"\} (\d+)/);
  results.push(await runLoad({ name: 'poll big room (local cache)', url: pollUrl(bigRoom), connections, durationS, serverPid: server.pid }));
  const cacheAfter = await metric(server.url, /danmaku_polls_total\{source="cache"\} (\d+)/);
  const redisBefore = await metric(server.url, /danmaku_polls_total\{source="redis"\} (\d+)/);
  results.push(await runLoad({ name: 'poll small room (Redis)', url: pollUrl(smallRoom), connections, durationS, serverPid: server.pid }));
  const redisAfter = await metric(server.url, /danmaku_polls_total\{source="redis"\} (\d+)/);

  const [baseline, cached, uncached] = results as [LoadResult, LoadResult, LoadResult];
  printTable('GET /v1/rooms/:roomId/messages', results, baseline);
  const summary = {
    cachedVsUncached: ratio(cached, uncached),
    cachedVsBaseline: ratio(cached, baseline),
    uncachedVsBaseline: ratio(uncached, baseline),
    targets: { cachedVsUncached: 3, cachedVsBaseline: 0.7 },
    // Proof the runs took the intended paths: server-side counts of polls by source.
    servedFromCache: cacheAfter - cacheBefore,
    servedFromRedis: redisAfter - redisBefore,
  };
  const met = summary.cachedVsUncached >= 3 && summary.cachedVsBaseline >= 0.7;
  process.stdout.write(
    `\ncached / uncached = ${summary.cachedVsUncached}x (target >= 3x), cached / hello-world = ${Math.round(summary.cachedVsBaseline * 100)} % (target >= 70 %): ${met ? 'targets met' : 'TARGETS MISSED'}\n` +
      `server counted ${summary.servedFromCache} polls from the cache during the cached run and ${summary.servedFromRedis} from Redis during the uncached run\n`,
  );
  const path = writeResult('poll', { settings: { durationS, connections, perAnswer, serverEnv }, results, summary, targetsMet: met });
  process.stdout.write(`results: ${path}\n`);
} finally {
  await server.stop();
  await hello.stop();
}
process.exit(0);
