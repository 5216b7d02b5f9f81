/**
 * npm run bench -- replay: replay reads of a finished live from each tier of the read path, in
 * one run, against real standalone servers (child processes on 127.0.0.1):
 *   hot  - one segment read over and over: this front's local cache;
 *   warm - random segments of 200, local cache squeezed to 1 MB: mostly the replay Redis;
 *   cold - the same on a server whose replay Redis is unreachable: every segment from MySQL.
 * The tier that answered is read back from the server's metrics for each run.
 * Knobs: BENCH_DURATION_S (10 per run), BENCH_CONNECTIONS (50), BENCH_REPLAY_SEGMENTS (200),
 * BENCH_REPLAY_PER_SEGMENT (200 messages).
 */
import autocannon from 'autocannon';
import { Archive } from '@danmaku/archive';
import { loadConfig } from '@danmaku/config';
import { newMessageId } from '@danmaku/model';
import { benchSettings, summarise, type LoadResult } from './lib/cannon.js';
import { printTable, writeResult } from './lib/report.js';
import { startStandaloneServer, type BenchServer } from './lib/servers.js';

const { durationS, connections } = benchSettings();
const SEGMENTS = Math.min(2000, Math.max(10, Number(process.env.BENCH_REPLAY_SEGMENTS ?? 200)));
const PER_SEGMENT = Math.min(2000, Math.max(1, Number(process.env.BENCH_REPLAY_PER_SEGMENT ?? 200)));
const SEGMENT_MS = 10_000;
const PAGE = 100;

const config = loadConfig();
const dbUrl = new URL(config.mysqlUrl);
dbUrl.pathname = '/danmaku_bench';
const run = Date.now().toString(36);
const room = `bench-replay-${run}`;
const liveId = `lvbench${run}`;

const serverEnv = {
  MYSQL_URL: dbUrl.toString(),
  DANMAKU_REPLAY_SEGMENT_MS: String(SEGMENT_MS),
  DANMAKU_REPLAY_CACHE_MB: '1',
  DANMAKU_REPLAY_SETTLE_MS: '1',
};

async function seed(archive: Archive): Promise<void> {
  const startedAt = Date.now() - SEGMENTS * SEGMENT_MS - 60_000;
  await archive.recordLiveStart({ liveId, roomId: room, startedAt, endedAt: null }, 'bench');
  const rows = [];
  for (let s = 0; s < SEGMENTS; s++) {
    for (let i = 0; i < PER_SEGMENT; i++) {
      const offsetMs = s * SEGMENT_MS + Math.floor((i * SEGMENT_MS) / PER_SEGMENT);
      const ts = startedAt + offsetMs;
      const gift = i % 5 === 0;
      const message = {
        id: newMessageId(ts) + s.toString(36) + 'x' + i.toString(36),
        roomId: room,
        type: gift ? 'gift' : 'comment',
        ts,
        user: { id: `u${i % 97}`, name: `viewer ${i % 97}` },
        ...(gift ? { gift: { giftId: 'rose', count: 1 } } : { content: `replay bench comment number ${i} of segment ${s}` }),
        liveId,
        offsetMs,
      } as const;
      rows.push({ id: message.id, roomId: room, type: message.type, ts, userId: message.user.id, liveId, offsetMs, body: JSON.stringify(message) });
    }
  }
  await archive.insert(rows, 2000);
  await archive.recordLiveEnd(liveId, startedAt + SEGMENTS * SEGMENT_MS);
}

async function tiers(url: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = { local: 0, inflight: 0, redis: 0, mysql: 0 };
  for (const m of text.matchAll(/^danmaku_replay_segment_reads_total\{tier="(\w+)"\} (\d+)/gm)) out[m[1] as string] = Number(m[2]);
  return out;
}

const path = (segment: number) => `/v1/lives/${liveId}/messages?from=${segment * SEGMENT_MS}&to=${(segment + 1) * SEGMENT_MS}&limit=${PAGE}`;

async function load(name: string, server: BenchServer, pick: () => number): Promise<LoadResult & { tiers: Record<string, number> }> {
  const before = await tiers(server.url);
  const result = await autocannon({
    url: server.url,
    connections,
    duration: durationS,
    timeout: 10,
    requests: [{ method: 'GET', setupRequest: (req) => ({ ...req, path: path(pick()) }) }],
  });
  const after = await tiers(server.url);
  const delta = Object.fromEntries(Object.keys(after).map((k) => [k, (after[k] ?? 0) - (before[k] ?? 0)]));
  return { ...summarise({ name, url: server.url + path(0), connections, durationS }, result, null), tiers: delta };
}

const archive = new Archive(dbUrl.toString());
let warmServer: BenchServer | null = null;
let coldServer: BenchServer | null = null;
try {
  process.stdout.write(`seeding live ${liveId}: ${SEGMENTS} segments x ${PER_SEGMENT} messages in MySQL...\n`);
  await archive.ready();
  await seed(archive);
  warmServer = await startStandaloneServer(serverEnv);
  // The cold server cannot reach its replay Redis (port 1), so each local miss is a MySQL read.
  coldServer = await startStandaloneServer({ ...serverEnv, REPLAY_REDIS_URL: 'redis://127.0.0.1:1' });

  // Load every segment into the replay Redis once (and check the answers while at it).
  for (let s = 0; s < SEGMENTS; s++) {
    const res = await fetch(warmServer.url + path(s));
    const body = (await res.json()) as { messages: unknown[] };
    if (res.status !== 200 || body.messages.length !== Math.min(PAGE, PER_SEGMENT)) throw new Error(`segment ${s}: ${res.status}, ${body.messages.length} messages`);
  }
  const random = () => Math.floor(Math.random() * SEGMENTS);
  const rows = [
    await load('hot (local cache, one segment)', warmServer, () => 7),
    await load('warm (replay Redis, random segment)', warmServer, random),
    await load('cold (MySQL, random segment)', coldServer, random),
  ];
  printTable(`replay: GET /v1/lives/:liveId/messages, ${PAGE} per page, ${SEGMENTS} segments of ${PER_SEGMENT} messages, ${connections} connections, ${durationS} s each`, rows, rows[0] as LoadResult);
  process.stdout.write('\nsegments served per tier during each run:\n');
  for (const r of rows) process.stdout.write(`  ${r.name.padEnd(38)} ${JSON.stringify(r.tiers)}\n`);
  const file = writeResult('replay', { settings: { segments: SEGMENTS, perSegment: PER_SEGMENT, page: PAGE, segmentMs: SEGMENT_MS, localCacheMb: 1, connections, durationS }, runs: rows });
  process.stdout.write(`\nwritten ${file}\n`);
} finally {
  await warmServer?.stop();
  await coldServer?.stop();
  await archive.pool.query('DELETE FROM messages WHERE live_id = ?', [liveId]).catch(() => undefined);
  await archive.pool.query('DELETE FROM lives WHERE live_id = ?', [liveId]).catch(() => undefined);
  await archive.close();
}
