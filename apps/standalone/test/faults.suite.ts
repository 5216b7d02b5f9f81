/**
 * The fault suite (`npm run test:faults`; not part of `npm test`, which it would double): the
 * split roles as real processes over the Kafka protocol (dev broker), a private Redis and the
 * project's MariaDB. A checker sends comments at a steady rate through two fronts (every 202
 * recorded), two pollers and a socket.io client read the room, and in turn each fault is
 * injected. Per fault: acknowledged, lost (acked but in neither Redis nor the archive),
 * duplicated, reordered (seen by a reader), and recovery time (fault injected -> a message sent
 * after it seen by every reader).
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { io as ioClient, type Socket } from 'socket.io-client';
import { Redis } from 'ioredis';
import { Archive } from '@danmaku/archive';
import { encodeCursor } from '@danmaku/model';
import {
  REPO_ROOT,
  freePort,
  sleep,
  spawnTs,
  startMockKafka,
  startRedis,
  testConfig,
  tokenFor,
  uniqueRoom,
  waitFor,
  type MockKafka,
  type Spawned,
  type TestRedis,
} from '@danmaku/testkit';

const REDIS_PORT = Number(process.env.FAULTS_REDIS_PORT ?? 17130);
const RATE_PER_S = 40;
const config = testConfig();
const cluster = `faults-${Date.now().toString(36)}`;

interface Role {
  name: string;
  entry: string;
  env: () => Promise<Record<string, string>>;
  ready: RegExp;
  proc?: Spawned;
  port?: number;
}

let kafka: MockKafka;
let redis: TestRedis;
const roles = new Map<string, Role>();

function baseEnv(): Record<string, string> {
  return {
    KAFKA_BROKERS: kafka.brokers.join(','),
    REDIS_URL: redis.url,
    REDIS_READ_URL: '',
    MYSQL_URL: config.mysqlUrl,
    DANMAKU_CLUSTER: cluster,
    LOG_LEVEL: 'info',
    DANMAKU_RATE_USER_MAX: '100000000',
    DANMAKU_RATE_IP_MAX: '100000000',
    DANMAKU_RETENTION: '20000',
    DANMAKU_PUSH_SWEEP_MS: '1000',
    DANMAKU_ARCHIVER_LINGER_MS: '50',
  };
}

async function startRole(role: Role): Promise<void> {
  role.proc = spawnTs(role.entry, { ...baseEnv(), ...(await role.env()) });
  await role.proc.waitForOutput(role.ready, 60_000);
}

function defineRoles(): void {
  const portEnv = (name: string, key: string) => async () => {
    const role = roles.get(name) as Role;
    role.port ??= await freePort();
    return { [key]: String(role.port) };
  };
  const add = (name: string, entry: string, key: string, ready: RegExp) => roles.set(name, { name, entry, env: portEnv(name, key), ready });
  add('front-a', 'apps/front/src/main.ts', 'PORT', /front listening/);
  add('front-b', 'apps/front/src/main.ts', 'PORT', /front listening/);
  add('processor', 'apps/processor/src/main.ts', 'PROCESSOR_PORT', /processor consuming/);
  add('archiver', 'apps/archiver/src/main.ts', 'ARCHIVER_PORT', /archiver consuming/);
  add('pusher', 'apps/pusher/src/main.ts', 'PUSHER_PORT', /pusher listening/);
  add('router', 'apps/router/src/main.ts', 'ROUTER_PORT', /router listening/);
  add('connector', 'apps/connector/src/main.ts', 'CONNECTOR_PORT', /connector \S+ listening/);
}

const url = (name: string): string => `http://127.0.0.1:${(roles.get(name) as Role).port}`;

/** The checker: what was acknowledged, and what each reader saw (ids, in order, with seq). */
class Checker {
  readonly acked = new Map<string, number>();
  readonly readers = new Map<string, { seen: string[]; seqs: number[] }>();
  private sending = false;
  private reading = false;
  private socket: Socket | null = null;
  private counter = 0;
  sendErrors = 0;

  constructor(readonly room: string) {}

  start(): void {
    this.sending = true;
    this.reading = true;
    void this.sendLoop();
    for (const front of ['front-a', 'front-b']) void this.pollLoop(`poller@${front}`, front);
    this.connectSocket();
  }

  private async sendLoop(): Promise<void> {
    const token = tokenFor('fault-writer');
    const fronts = ['front-a', 'front-b'];
    while (this.sending) {
      const i = this.counter++;
      const front = fronts[i % 2] as string;
      const started = Date.now();
      // Each attempt is one message (its own clientMsgId); a 503 or a dead front is simply not acked.
      void fetch(`${url(front)}/v1/rooms/${this.room}/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ type: 'comment', content: `f${i}`, clientMsgId: `f-${i}` }),
        signal: AbortSignal.timeout(5000),
      })
        .then(async (res) => {
          if (res.status === 202) this.acked.set(((await res.json()) as { id: string }).id, Date.now());
          else {
            this.sendErrors++;
            await res.body?.cancel();
          }
        })
        .catch(() => this.sendErrors++);
      await sleep(Math.max(0, 1000 / RATE_PER_S - (Date.now() - started)));
    }
  }

  private record(reader: string, messages: { id: string; seq?: number }[]): void {
    let entry = this.readers.get(reader);
    if (!entry) this.readers.set(reader, (entry = { seen: [], seqs: [] }));
    for (const m of messages) {
      entry.seen.push(m.id);
      if (typeof m.seq === 'number') entry.seqs.push(m.seq);
    }
  }

  private async pollLoop(reader: string, front: string): Promise<void> {
    let cursor = encodeCursor({ comment: 0 });
    while (this.reading) {
      try {
        const res = await fetch(`${url(front)}/v1/rooms/${this.room}/messages?types=comment&limit=200&cursor=${encodeURIComponent(cursor)}`, { signal: AbortSignal.timeout(3000) });
        if (res.status === 200) {
          const body = (await res.json()) as { messages: { id: string; seq: number }[]; cursor: string; skipped: boolean };
          this.record(reader, body.messages);
          cursor = body.cursor;
        } else await res.body?.cancel();
      } catch {
        // The front is down: poll the other one's state again shortly, from the same cursor.
      }
      await sleep(250);
    }
  }

  private connectSocket(): void {
    const socket = ioClient(url('connector'), { transports: ['websocket'], auth: { token: tokenFor('fault-reader') }, reconnectionDelay: 200, reconnectionDelayMax: 1000 });
    this.socket = socket;
    let cursor: string | undefined;
    socket.on('connect', () => {
      void socket
        .timeout(5000)
        .emitWithAck('join', { roomId: this.room, types: ['comment'], ...(cursor ? { cursor } : {}) })
        .then((ack: { ok: boolean; cursor?: string }) => {
          if (ack.ok && !cursor) cursor = ack.cursor;
        })
        .catch(() => socket.disconnect().connect());
    });
    socket.on('messages', (packet: { roomId: string; messages: { id: string; seq: number }[]; cursor: string }) => {
      if (packet.roomId !== this.room) return;
      this.record('socket', packet.messages);
      cursor = packet.cursor;
    });
  }

  /** A reconnecting socket must come back to the connector (restarted on the same port). */
  async stop(): Promise<void> {
    this.sending = false;
    await sleep(500);
    this.reading = false;
    this.socket?.close();
  }

  seenByAll(id: string): boolean {
    for (const reader of ['poller@front-a', 'poller@front-b', 'socket']) {
      if (!this.readers.get(reader)?.seen.includes(id)) return false;
    }
    return true;
  }

  describe(): string {
    const readers = [...this.readers].map(([name, r]) => `${name}: ${r.seen.length}`).join(', ');
    return `acked ${this.acked.size}, send errors ${this.sendErrors}, readers { ${readers} }`;
  }

}

interface FaultRow {
  fault: string;
  acknowledged: number;
  lost: number;
  duplicated: number;
  reordered: number;
  recoveryMs: number;
}

async function storedIds(room: string): Promise<Set<string>> {
  const ids = new Set<string>();
  // From the very start of the room (seq 0), not the newest window a cursorless poll gives.
  let cursor = encodeCursor({ comment: 0 });
  for (let i = 0; i < 500; i++) {
    const res = await fetch(`${url('front-a')}/v1/rooms/${room}/messages?types=comment&limit=200&cursor=${encodeURIComponent(cursor)}`);
    const body = (await res.json()) as { messages: { id: string }[]; cursor: string };
    for (const m of body.messages) ids.add(m.id);
    if (body.messages.length === 0) break;
    cursor = body.cursor;
  }
  return ids;
}

async function runFault(name: string, inject: () => Promise<void>): Promise<FaultRow> {
  const room = uniqueRoom('fault');
  const checker = new Checker(room);
  checker.start();
  // Flowing: some message acked a little while ago has reached every reader (the newest one is
  // always a few hundred ms from being seen at this rate).
  await waitFor(`${name}: traffic flowing`, () => {
    const now = Date.now();
    for (const [id, at] of checker.acked) if (now - at > 1000 && now - at < 5000 && checker.seenByAll(id)) return true;
    return false;
  }, 30_000, 100).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}; ${checker.describe()}`);
  });
  await sleep(1000);
  const injectedAt = Date.now();
  await inject();
  // Recovery: a message acked after the fault was injected, seen by every reader.
  let recoveredAt = 0;
  await waitFor(`${name}: recovery`, () => {
    for (const [id, at] of checker.acked) {
      if (at > injectedAt && checker.seenByAll(id)) {
        recoveredAt = Date.now();
        return true;
      }
    }
    return false;
  }, 120_000, 100);
  await sleep(1000);
  await checker.stop();
  // Everything acked reaches Redis and the archive (allow the pipeline to drain).
  const acked = [...checker.acked.keys()];
  const archive = new Archive(config.mysqlUrl);
  let lost = acked.length;
  try {
    await waitFor(`${name}: every acknowledged message stored`, async () => {
      const inRedis = await storedIds(room);
      const [rows] = (await archive.pool.query('SELECT id FROM messages WHERE room_id = ?', [room])) as unknown as [{ id: string }[]];
      const inArchive = new Set(rows.map((r) => r.id));
      lost = acked.filter((id) => !inRedis.has(id) || !inArchive.has(id)).length;
      return lost === 0;
    }, 60_000, 500).catch(() => undefined);
  } finally {
    await archive.close();
  }
  // Readers: every acked message exactly once, seq only growing.
  let duplicated = 0;
  let reordered = 0;
  for (const { seen, seqs } of checker.readers.values()) {
    duplicated += seen.length - new Set(seen).size;
    for (let i = 1; i < seqs.length; i++) if ((seqs[i] as number) <= (seqs[i - 1] as number)) reordered++;
  }
  return { fault: name, acknowledged: acked.length, lost, duplicated, reordered, recoveryMs: recoveredAt - injectedAt };
}

async function killAndRestart(name: string): Promise<void> {
  const role = roles.get(name) as Role;
  await role.proc?.kill('SIGKILL');
  await startRole(role);
}

before(async () => {
  kafka = await startMockKafka({ [config.topic]: config.partitions });
  redis = await startRedis({ port: REDIS_PORT });
  defineRoles();
  for (const role of roles.values()) await startRole(role);
});

after(async () => {
  // Each role's output, for reading after a failure.
  const logs = join(REPO_ROOT, '.run', 'faults');
  mkdirSync(logs, { recursive: true });
  for (const role of roles.values()) writeFileSync(join(logs, `${role.name}.log`), role.proc?.output() ?? '');
  for (const role of roles.values()) await role.proc?.kill('SIGKILL');
  kafka.resume();
  await kafka.stop();
  await redis.stop();
});

test('faults: nothing acknowledged lost or duplicated', { timeout: 8 * 60_000 }, async () => {
  const rows: FaultRow[] = [];
  const faults: [string, () => Promise<void>][] = [
    ['kill -9 processor', () => killAndRestart('processor')],
    ['kill -9 archiver', () => killAndRestart('archiver')],
    ['kill -9 pusher', () => killAndRestart('pusher')],
    ['kill -9 connector', () => killAndRestart('connector')],
    ['kill -9 front', () => killAndRestart('front-b')],
    ['kill -9 router', () => killAndRestart('router')],
    [
      // A Redis stalled (SIGSTOP 5 s): writes wait on the bus, reads answer 503 fast. A primary
      // killed for good needs a replica to take over: the cluster topology's fault.
      'Redis SIGSTOP 5 s',
      async () => {
        const client = new Redis(redis.url);
        const info = await client.info('server');
        client.disconnect();
        const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
        process.kill(pid, 'SIGSTOP');
        await sleep(5000);
        process.kill(pid, 'SIGCONT');
      },
    ],
    [
      'Kafka broker SIGSTOP 10 s',
      async () => {
        kafka.pause();
        await sleep(10_000);
        kafka.resume();
      },
    ],
  ];
  for (const [name, inject] of faults) {
    const row = await runFault(name, inject);
    rows.push(row);
    process.stdout.write(`# ${JSON.stringify(row)}\n`);
  }
  const table = [
    '| fault | acknowledged | lost | duplicated | reordered | recovery |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.fault} | ${r.acknowledged} | ${r.lost} | ${r.duplicated} | ${r.reordered} | ${(r.recoveryMs / 1000).toFixed(1)} s |`),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  mkdirSync(join(REPO_ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench', 'results', `faults-${new Date().toISOString().replace(/[:.]/g, '-')}.json`), JSON.stringify(rows, null, 2));
  for (const r of rows) {
    assert.equal(r.lost, 0, `${r.fault}: lost`);
    assert.equal(r.duplicated, 0, `${r.fault}: duplicated`);
    assert.equal(r.reordered, 0, `${r.fault}: reordered`);
    assert.ok(r.acknowledged > 0, `${r.fault}: nothing acknowledged`);
  }
});
