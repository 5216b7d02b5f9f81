/**
 * npm run bench -- send: POST /v1/rooms/:roomId/messages (validate, authenticate, moderation
 * checks, stamp, produce to the in-memory bus, 202) on the standalone server, beside a Fastify
 * JSON echo baseline (POST, same body and headers), in one run. Every server is a child process
 * on 127.0.0.1; autocannon runs here, bounded in time. Afterwards it checks that every accepted
 * message was stored (the processor drained the bus into Redis): nothing accepted is lost.
 * Each server is first warmed by BENCH_WARM (10000) sends, 10 at a time.
 * Knobs: BENCH_DURATION_S (10), BENCH_CONNECTIONS (50), BENCH_WARM. `--profile` runs the server under
 * `node --cpu-prof` and prints its top functions at the end.
 */
import { createAuth } from '@danmaku/auth';
import { loadConfig } from '@danmaku/config';
import { decodeCursor } from '@danmaku/protocol';
import { benchSettings, runLoad, type LoadResult } from './lib/cannon.js';
import { printProfile, profileDir } from './lib/profile.js';
import { printTable, ratio, writeResult } from './lib/report.js';
import { startHelloServer, startStandaloneServer } from './lib/servers.js';
import { startKafka } from '@danmaku/testkit';
import { warmUp } from './lib/warm.js';

const { durationS, connections } = benchSettings();
const WARM = Number(process.env.BENCH_WARM ?? 10_000);
// Per-user and per-IP send limits would turn the bench into a 429 bench: lifted for this run.
const serverEnv = { DANMAKU_RATE_USER_MAX: '1000000000', DANMAKU_RATE_IP_MAX: '1000000000' };
const config = loadConfig({ ...process.env, ...serverEnv });
const token = createAuth(config.jwtSecret).sign({ sub: 'bench-sender', name: 'Bench', role: 'viewer' });
const room = `bench-send-${Date.now().toString(36)}`;
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const body = JSON.stringify({ type: 'comment', content: 'a bench comment of ordinary length' });

const hello = await startHelloServer();
const profiling = process.argv.includes('--profile') ? profileDir('send') : null;
const spawnedAt = Date.now();
const server = await startStandaloneServer(serverEnv, profiling?.flags);
// The same server with an Apache Kafka broker for its bus: the pipeline as the split roles run
// it, its CPU counted with the broker's JVM.
const kafka = await startKafka();
const overKafka = await startStandaloneServer({ ...serverEnv, KAFKA_BROKERS: kafka.brokers.join(',') });
const roomOverKafka = `${room}-kafka`;
let sendFrom = spawnedAt;
try {
  process.stdout.write(`send bench: ${durationS} s per run, ${connections} connections, one room\n`);
  // Every server (and the broker) warmed alike first: a fresh one spends its first thousands of
  // requests compiling (V8's and the JVM's JIT).
  const warm = (url: string) => warmUp(WARM, () => fetch(url, { method: 'POST', headers, body }).then((r) => r.arrayBuffer()));
  await warm(`${hello.url}/echo`);
  await warm(`${server.url}/v1/rooms/${room}-aside/messages`);
  await warm(`${overKafka.url}/v1/rooms/${roomOverKafka}-aside/messages`);
  const results: LoadResult[] = [];
  results.push(await runLoad({ name: 'JSON echo (Fastify baseline)', url: `${hello.url}/echo`, method: 'POST', headers, body, connections, durationS, serverPid: hello.pid }));
  sendFrom = Date.now();
  results.push(await runLoad({ name: 'send comment (202)', url: `${server.url}/v1/rooms/${room}/messages`, method: 'POST', headers, body, connections, durationS, serverPid: server.pid }));
  results.push(
    await runLoad({ name: 'send comment over Kafka (202; standalone + broker JVM)', url: `${overKafka.url}/v1/rooms/${roomOverKafka}/messages`, method: 'POST', headers, body, connections, durationS, serverPid: [overKafka.pid, kafka.pid] }),
  );
  const [baseline, send, sendKafka] = results as [LoadResult, LoadResult, LoadResult];
  printTable('POST /v1/rooms/:roomId/messages', results, baseline);

  // Every 202 must become a stored message: wait for the processor to catch up, then compare.
  const storedIn = async (url: string, roomId: string, accepted: number): Promise<{ stored: number; drainMs: number }> => {
    const started = Date.now();
    let stored = 0;
    while (Date.now() - started < 60_000) {
      const page = (await (await fetch(`${url}/v1/rooms/${roomId}/messages?types=comment&limit=1`)).json()) as { cursor: string };
      stored = decodeCursor(page.cursor)?.comment ?? 0;
      if (stored >= accepted) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { stored, drainMs: Date.now() - started };
  };
  const { stored, drainMs } = await storedIn(server.url, room, send.ok2xx);
  const viaKafka = await storedIn(overKafka.url, roomOverKafka, sendKafka.ok2xx);
  // Requests still in flight when autocannon stops are not counted by it but may have been
  // accepted, so stored can exceed the 2xx count; only fewer would be a loss.
  const summary = {
    sendVsBaseline: ratio(send, baseline),
    accepted: send.ok2xx,
    stored,
    lost: Math.max(0, send.ok2xx - stored),
    drainMsAfterLoad: drainMs,
    kafka: { sendVsBaseline: ratio(sendKafka, baseline), accepted: sendKafka.ok2xx, stored: viaKafka.stored, lost: Math.max(0, sendKafka.ok2xx - viaKafka.stored), drainMsAfterLoad: viaKafka.drainMs },
  };
  process.stdout.write(
    `\nsend / echo baseline = ${Math.round(summary.sendVsBaseline * 100)} %; accepted ${summary.accepted}, stored ${stored} ` +
      `(${summary.lost === 0 ? 'none lost' : `${summary.lost} MISSING`}), processor caught up ${drainMs} ms after the load\n`,
  );
  const path = writeResult('send', { settings: { durationS, connections, serverEnv }, results, summary });
  process.stdout.write(`results: ${path}\n`);
  process.stdout.write(`over Kafka: send / echo baseline = ${Math.round(summary.kafka.sendVsBaseline * 100)} %; accepted ${summary.kafka.accepted}, stored ${summary.kafka.stored} (${summary.kafka.lost === 0 ? 'none lost' : `${summary.kafka.lost} MISSING`})\n`);
  if (summary.lost !== 0 || summary.kafka.lost !== 0) process.exitCode = 1;
} finally {
  await server.stop();
  await overKafka.stop();
  await kafka.stop();
  await hello.stop();
}
if (profiling) printProfile(profiling.dir, { standalone: server.pid }, 40, { skipFirstMs: sendFrom - spawnedAt });
process.exit(process.exitCode ?? 0);
