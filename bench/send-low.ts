/**
 * npm run bench -- send-low: what one message costs the server when messages arrive one at a
 * time (the fan-out bench's 200 msg/s), without the fan-out: the standalone server of the fan-out
 * bench (front, processor, pusher, archiver; no connector) on a Redis of its own, one room that a
 * registered (silent) connector node holds with 2,000 subscribers, so the pusher reads and
 * broadcasts as for a big room. Posts LOW_N messages at LOW_RATE per second, waits until the last
 * is stored, and prints the server's CPU per message (from /proc), its idle CPU, Redis's CPU per
 * message and the Redis commands per message (INFO commandstats); then the same over an Apache
 * Kafka broker as the bus, the broker's JVM counted beside the server.
 * Every server (and the broker) is warmed first by LOW_WARM sends, 10 at a time, and 2 s of the paced ones; a broker
 * also by BENCH_BROKER_WARM_S (45) s of paced sends.
 * Knobs: LOW_N (1000), LOW_RATE (200), LOW_WARM (10000), LOW_ENV (JSON of extra server environment); `--profile`
 * (the in-memory run) or `--profile-kafka` (the run over a broker) runs that server under `node --cpu-prof` and prints its top functions and areas at the end.
 */
import { Redis } from 'ioredis';
import { decodeCursor } from '@danmaku/protocol';
import { pushKeys } from '@danmaku/push';
import { spawnTs, startKafka, startRedis, tokenFor, uniqueRoom, waitFor, type TestKafka } from '@danmaku/testkit';
import { cpuSeconds, threadCpuSeconds } from './lib/cannon.js';
import { printProfile, profileDir } from './lib/profile.js';
import { startHelloServer } from './lib/servers.js';
import { BROKER_WARM_S, sendPaced, warmUp } from './lib/warm.js';
import { writeResult } from './lib/report.js';

const N = Number(process.env.LOW_N ?? 1000);
const WARM_UP = 20;
// A fresh server and broker spend their first thousands of sends compiling (V8's and the JVM's
// JIT): LOW_WARM sends, 10 at a time, warm every server measured here, then 2 s of the paced sends.
const WARM = Number(process.env.LOW_WARM ?? 10_000);
const WARM_S = 2;
const R = Number(process.env.LOW_RATE ?? 200);
const extraEnv = process.env.LOW_ENV ? (JSON.parse(process.env.LOW_ENV) as Record<string, string>) : {};
const redis = await startRedis();
const probe = new Redis(redis.url);
const redisPid = Number(/process_id:(\d+)/.exec(await probe.info('server'))?.[1]);
const cluster = uniqueRoom('low-cluster');
const env = {
  REDIS_URL: redis.url,
  LOG_LEVEL: 'warn',
  DANMAKU_CLUSTER: cluster,
  DANMAKU_RATE_USER_MAX: '100000000',
  DANMAKU_RATE_IP_MAX: '100000000',
  DANMAKU_RETENTION: '1000',
  PORT: '0',
  ...extraEnv,
};
// `--profile` profiles the in-memory run, `--profile-kafka` the run over a broker.
const profileKafka = process.argv.includes('--profile-kafka');
const profiling = process.argv.includes('--profile') || profileKafka ? profileDir('send-low') : null;
let spawnedAt = Date.now();
let measuredFrom = spawnedAt;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const token = tokenFor('low-sender');
const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
const postTo = async (target: string, i: number): Promise<void> => {
  const res = await fetch(target, { method: 'POST', headers, body: JSON.stringify({ type: 'comment', content: `b ${Date.now()} ${i}` }) });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`${target} answered ${res.status}`);
};
/** Posts `count` bodies to `target` at R per second, each on its own schedule; resolves when all were answered. */
const postPaced = (target: string, count = N): Promise<void> => sendPaced(count / R, R, (i) => postTo(target, i));
/** The paced posts to a baseline; the CPU `cpuPid` used meanwhile, in us per post. */
const paced = async (target: string, cpuPid: number): Promise<number> => {
  for (let i = 0; i < WARM_UP; i++) await postTo(target, -1);
  await warmUp(WARM, (i) => postTo(target, i));
  await postPaced(target, Math.round(WARM_S * R));
  await sleep(1000);
  const before = cpuSeconds(cpuPid) ?? 0;
  await postPaced(target);
  await sleep(300);
  return Math.round((((cpuSeconds(cpuPid) ?? 0) - before) * 1e6) / N);
};

/**
 * The server (bench/fanout-server.ts) with `serverEnv`, N paced messages to one room that a silent
 * connector node holds with 2,000 subscribers; what each message cost the server, its threads,
 * Redis, and `extraPids` (a Kafka broker's JVM), per message, besides their idle CPU.
 */
async function measure(serverEnv: Record<string, string>, extraPids: Record<string, number>, flags: string[]) {
  // The profile's clock starts with the profiled process.
  if (flags.length) spawnedAt = Date.now();
  const server = spawnTs('bench/fanout-server.ts', serverEnv, [], flags);
  try {
    await server.waitForOutput(/server listening on \S+/, 60_000);
    const url = /server listening on (\S+)/.exec(server.output())?.[1] as string;
    const pid = server.child.pid as number;
    const room = uniqueRoom('low');
    await probe.hset(pushKeys.subscribers(cluster, room), 'silent-node', 2000);
    await probe.zadd(pushKeys.alive(cluster), Date.now() + 3_600_000, 'silent-node');
    const sendUrl = `${url}/v1/rooms/${room}/messages`;
    for (let i = 0; i < WARM_UP; i++) await postTo(sendUrl, -1);
    // The warm-up goes to a room of its own, so the measured room holds exactly what is counted.
    await warmUp(WARM, (i) => postTo(`${url}/v1/rooms/${room}-aside/messages`, i));
    if (extraPids.kafka && BROKER_WARM_S > 0) await sendPaced(BROKER_WARM_S, R, (i) => postTo(`${url}/v1/rooms/${room}-aside/messages`, i));
    const warmed = Math.round(WARM_S * R);
    await postPaced(sendUrl, warmed);
    await sleep(3000);
    const idlePids = { server: pid, ...extraPids };
    const idle0 = Object.fromEntries(Object.entries(idlePids).map(([k, p]) => [k, cpuSeconds(p) ?? 0]));
    await sleep(3000);
    const idleMsPerS = Object.fromEntries(Object.entries(idlePids).map(([k, p]) => [k, Math.round((((cpuSeconds(p) ?? 0) - (idle0[k] as number)) / 3) * 1000)]));
    await probe.config('RESETSTAT');
    if (flags.length) measuredFrom = Date.now();
    const cpu0 = cpuSeconds(pid) ?? 0;
    const extra0 = Object.fromEntries(Object.entries(extraPids).map(([k, p]) => [k, cpuSeconds(p) ?? 0]));
    const threads0 = threadCpuSeconds(pid);
    const redis0 = cpuSeconds(redisPid) ?? 0;
    const t0 = Date.now();
    await postPaced(sendUrl);
    // Every message (the warm-up's included) stored; counted by the cursor, since under load the
    // last one sent need not be the last one stored.
    await waitFor(
      'every message to be stored',
      async () => {
        const page = (await (await fetch(`${url}/v1/rooms/${room}/messages?types=comment&limit=1`)).json()) as { cursor: string };
        return (decodeCursor(page.cursor)?.comment ?? 0) >= N + WARM_UP + warmed;
      },
      20_000,
      20,
    );
    await sleep(300);
    const seconds = (Date.now() - t0) / 1000;
    const cpu = (cpuSeconds(pid) ?? 0) - cpu0;
    const threads1 = threadCpuSeconds(pid);
    const threadUsPerMessage = Object.fromEntries(
      Object.entries(threads1)
        .map(([name, s]) => [name, Math.round(((s - (threads0[name] ?? 0)) * 1e6) / N)] as const)
        .filter(([, us]) => us > 0),
    );
    const extraUsPerMessage = Object.fromEntries(Object.entries(extraPids).map(([k, p]) => [k, Math.round((((cpuSeconds(p) ?? 0) - (extra0[k] as number)) * 1e6) / N)]));
    const redisCpu = (cpuSeconds(redisPid) ?? 0) - redis0;
    const calls: Record<string, number> = {};
    for (const m of (await probe.info('commandstats')).matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) calls[m[1] as string] = Number(m[2]);
    const commands = Object.values(calls).reduce((a, b) => a + b, 0);
    return {
      serverUsPerMessage: Math.round((cpu * 1e6) / N),
      serverIdleMsPerS: idleMsPerS.server as number,
      idleMsPerS,
      threadUsPerMessage,
      extraUsPerMessage,
      redisUsPerMessage: Math.round((redisCpu * 1e6) / N),
      redisCommandsPerMessage: Math.round((commands / N) * 100) / 100,
      commandsPerMessage: Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, Math.round((v / N) * 100) / 100])),
      seconds,
      pid,
    };
  } finally {
    await server.kill('SIGTERM');
  }
}

let kafka: TestKafka | null = null;
let profiledPid = 0;
try {
  // The same posts at the same pace to Fastify baselines: what one request costs this machine at
  // this rate (a request arriving alone wakes the process and pays its syscalls by itself).
  const hello = await startHelloServer({ REDIS_URL: redis.url });
  const echoUs = await paced(`${hello.url}/echo`, hello.pid);
  const echoRedisUs = await paced(`${hello.url}/echo-redis`, hello.pid);
  await hello.stop();
  const inMemory = await measure(env, {}, profileKafka ? [] : (profiling?.flags ?? []));
  if (!profileKafka) profiledPid = inMemory.pid;
  // The same server with an Apache Kafka broker as its bus, the pipeline as the split roles run it:
  // the broker's JVM is server CPU too.
  kafka = await startKafka();
  const overKafka = await measure({ ...env, KAFKA_BROKERS: kafka.brokers.join(',') }, { kafka: kafka.pid }, profileKafka ? (profiling?.flags ?? []) : []);
  if (profileKafka) profiledPid = overKafka.pid;
  const { pid: _pid, extraUsPerMessage: _none, ...rest } = inMemory;
  const summary = {
    messages: N,
    ratePerS: R,
    ...rest,
    echoUsPerRequest: echoUs,
    echoRedisUsPerRequest: echoRedisUs,
    kafka: {
      serverUsPerMessage: overKafka.serverUsPerMessage,
      brokerUsPerMessage: overKafka.extraUsPerMessage.kafka ?? null,
      totalUsPerMessage: overKafka.serverUsPerMessage + (overKafka.extraUsPerMessage.kafka ?? 0),
      idleMsPerS: overKafka.idleMsPerS,
      threadUsPerMessage: overKafka.threadUsPerMessage,
      redisUsPerMessage: overKafka.redisUsPerMessage,
      redisCommandsPerMessage: overKafka.redisCommandsPerMessage,
      seconds: overKafka.seconds,
    },
  };
  process.stdout.write(
    `send-low: ${N} messages at ${R}/s: server ${summary.serverUsPerMessage} us CPU per message (idle ${summary.serverIdleMsPerS} ms/s), ` +
      `by thread ${JSON.stringify(summary.threadUsPerMessage)}, ` +
      `Redis ${summary.redisUsPerMessage} us and ${summary.redisCommandsPerMessage} commands per message\n  ${JSON.stringify(summary.commandsPerMessage)}\n` +
      `  over a Kafka broker: server ${summary.kafka.serverUsPerMessage} us + the broker's JVM ${String(summary.kafka.brokerUsPerMessage)} us per message ` +
      `(idle: server ${String(summary.kafka.idleMsPerS.server)} ms/s, JVM ${String(summary.kafka.idleMsPerS.kafka)} ms/s)\n` +
      `  baselines at the same pace: Fastify JSON echo ${echoUs} us CPU per request, echo after one Redis round trip ${echoRedisUs} us\n`,
  );
  process.stdout.write(`results: ${writeResult('send-low', { settings: { N, R, warm: WARM, extraEnv }, summary })}\n`);
} finally {
  probe.disconnect();
  await kafka?.stop();
  await redis.stop();
}
if (profiling) printProfile(profiling.dir, { server: profiledPid }, 30, { skipFirstMs: measuredFrom - spawnedAt });
process.exit(0);
