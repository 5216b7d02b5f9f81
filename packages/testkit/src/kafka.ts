/**
 * Apache Kafka brokers owned by a test: one broker, or a three-broker KRaft quorum, each a real
 * JVM run by scripts/kafka-broker.sh on loopback ports with its data in a temporary folder.
 *
 * Each broker's stdin is a pipe from this process: when the test process exits (even on SIGKILL)
 * the pipe closes and the broker is killed, so tests never leak brokers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KafkaBus } from '@danmaku/bus';
import { Kafka, logLevel } from 'kafkajs';
import { REPO_ROOT, freePort, waitFor } from './harness.js';

const SCRIPT = join(REPO_ROOT, 'scripts/kafka-broker.sh');
const BOOT_TIMEOUT_MS = 60_000;

export interface KafkaBroker {
  readonly id: number;
  /** host:port of its client listener. */
  readonly address: string;
  /** The JVM's pid while it runs (0 when stopped). */
  pid(): number;
  running(): boolean;
  /** Sends the signal to the JVM and waits for it to exit (SIGKILL: a crash; SIGTERM: a controlled shutdown). */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same ports and data after kill(); resolves once it takes connections. */
  start(): Promise<void>;
  /** SIGSTOP: keeps its sockets but answers nothing (a stalled broker). */
  pause(): void;
  resume(): void;
}

export interface TestKafka {
  /** Bootstrap addresses, every broker. */
  brokers: string[];
  nodes: KafkaBroker[];
  /** The first broker's JVM pid. */
  pid: number;
  /** Stalls (SIGSTOP) or resumes every broker. */
  pause(): void;
  resume(): void;
  /** Creates topics (idempotent) as the bus does: replication 3 (or every broker when fewer), leaders waited for. */
  createTopics(topics: Record<string, number>): Promise<void>;
  /** The broker leading a partition now, or undefined when it has no leader. */
  leaderOf(topic: string, partition: number): Promise<KafkaBroker | undefined>;
  /** Resolves once no partition of `topics` is under-replicated: every replica back in sync. */
  inSync(topics: string[], timeoutMs?: number): Promise<void>;
  /** Kills every broker and removes their data. Idempotent. */
  stop(): Promise<void>;
}

export interface StartKafkaOptions {
  /** 1 (default) or 3: a three-voter quorum, replication 3, min.insync.replicas 2. */
  nodes?: 1 | 3;
  /** Topics to create once the cluster is up: name -> partitions. */
  topics?: Record<string, number>;
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

class Broker implements KafkaBroker {
  private child: ChildProcess | null = null;
  private javaPid = 0;
  private exited: Promise<void> = Promise.resolve();
  private log = '';

  constructor(
    readonly id: number,
    private readonly port: number,
    private readonly controllerPort: number,
    private readonly dir: string,
    private readonly voters: string,
    private readonly clusterId: string,
  ) {}

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  pid(): number {
    return this.running() ? this.javaPid : 0;
  }

  running(): boolean {
    return this.child !== null && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running()) return;
    const child = spawn('bash', [SCRIPT, 'run', this.dir, String(this.id), String(this.port), String(this.controllerPort), this.voters, this.clusterId], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, KAFKA_WATCH_STDIN: '1', KAFKA_HEAP_OPTS: process.env.KAFKA_HEAP_OPTS ?? '-Xms128m -Xmx384m' },
    });
    this.child = child;
    // A restart's JVM is another process: nothing of the last run's output may name its pid.
    this.javaPid = 0;
    this.log = '';
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    const collect = (chunk: Buffer): void => {
      this.log = (this.log + chunk.toString('utf8')).slice(-8192);
      const m = /JAVA_PID (\d+)/.exec(this.log);
      if (m?.[1]) this.javaPid = Number(m[1]);
    };
    child.stdout?.on('data', collect);
    child.stderr?.on('data', collect);
    // Neither the pipes nor the child keep a test alive; the closed stdin then kills the JVM.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
    await waitFor(
      `Kafka broker ${this.id} on ${this.address}`,
      async () => {
        if (!this.running()) throw new Error(`broker ${this.id} exited during start-up:\n${this.log}`);
        return this.javaPid > 0 && (await portOpen(this.port));
      },
      BOOT_TIMEOUT_MS,
      100,
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message} (logs in ${this.dir})`);
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    if (!this.running()) return;
    if (this.javaPid) {
      try {
        process.kill(this.javaPid, 'SIGCONT');
        process.kill(this.javaPid, signal);
      } catch {
        // already gone
      }
    }
    const timer = setTimeout(() => {
      try {
        if (this.javaPid) process.kill(this.javaPid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, 30_000);
    await this.exited;
    clearTimeout(timer);
    this.child?.stdin?.destroy();
  }

  pause(): void {
    if (this.running() && this.javaPid) process.kill(this.javaPid, 'SIGSTOP');
  }

  resume(): void {
    if (this.running() && this.javaPid) process.kill(this.javaPid, 'SIGCONT');
  }
}

function admin(brokers: string[]) {
  return new Kafka({ clientId: 'testkit', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10, initialRetryTime: 100, maxRetryTime: 1000 } }).admin();
}

export async function startKafka(options: StartKafkaOptions = {}): Promise<TestKafka> {
  const count = options.nodes ?? 1;
  const dir = mkdtempSync(join(tmpdir(), 'danmaku-kafka-'));
  const ports = await Promise.all(Array.from({ length: count * 2 }, () => freePort()));
  const clusterId = randomBytes(16).toString('base64url');
  const voters = Array.from({ length: count }, (_, i) => `${i + 1}@127.0.0.1:${ports[count + i]}`).join(',');
  const nodes = Array.from({ length: count }, (_, i) => new Broker(i + 1, ports[i] as number, ports[count + i] as number, join(dir, `broker-${i + 1}`), voters, clusterId));
  const brokers = nodes.map((n) => n.address);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      await Promise.all(nodes.map((n) => n.kill('SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    })());

  try {
    await Promise.all(nodes.map((n) => n.start()));
    // Up means every broker registered with the quorum, not only listening.
    const a = admin(brokers);
    await a.connect();
    try {
      await waitFor('every Kafka broker registered', async () => (await a.describeCluster()).brokers.length === count, BOOT_TIMEOUT_MS, 200);
    } finally {
      await a.disconnect();
    }
  } catch (err) {
    await stop();
    throw err;
  }

  const kafka: TestKafka = {
    brokers,
    nodes,
    pid: nodes[0]?.pid() ?? 0,
    pause: () => nodes.forEach((n) => n.pause()),
    resume: () => nodes.forEach((n) => n.resume()),
    async createTopics(topics) {
      // As the roles create theirs: replicated on every broker (up to three), leaders waited for.
      for (const [topic, partitions] of Object.entries(topics)) {
        const bus = new KafkaBus({ brokers, clientId: 'testkit', partitions });
        try {
          await bus.ensureTopic(topic);
        } finally {
          await bus.close();
        }
      }
    },
    async leaderOf(topic, partition) {
      const a = admin(nodes.filter((n) => n.running()).map((n) => n.address));
      await a.connect();
      try {
        const meta = await a.fetchTopicMetadata({ topics: [topic] });
        const leader = meta.topics[0]?.partitions.find((p) => p.partitionId === partition)?.leader;
        return nodes.find((n) => n.id === leader);
      } finally {
        await a.disconnect();
      }
    },
    async inSync(topics, timeoutMs = 60_000) {
      const a = admin(nodes.filter((n) => n.running()).map((n) => n.address));
      await a.connect();
      try {
        await waitFor(`every replica of ${topics.join(', ')} in sync`, async () => {
          const meta = await a.fetchTopicMetadata({ topics });
          return meta.topics.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.isr.length === p.replicas.length));
        }, timeoutMs, 200);
      } finally {
        await a.disconnect();
      }
    },
    stop,
  };
  if (options.topics) await kafka.createTopics(options.topics);
  return kafka;
}
