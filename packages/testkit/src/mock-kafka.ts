/**
 * Launcher for the librdkafka mock broker (scripts/kafka-mock/mock-broker.c).
 *
 * The broker is spawned with a piped stdin: when this process exits (even on
 * SIGKILL) the pipe closes and the broker exits by itself, so tests never
 * leak servers.
 */
import { spawn, execFile } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

export interface MockKafka {
  /** Bootstrap brokers, e.g. ['127.0.0.1:41234']. */
  brokers: string[];
  /** SIGTERM the broker and wait for it to exit. Idempotent. */
  stop(): Promise<void>;
  /** The broker's process id (fault tests stall it with SIGSTOP / SIGCONT). */
  pid: number;
  /** SIGSTOP: the broker keeps its sockets but answers nothing (a stalled Kafka). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

const BOOT_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

/** packages/testkit/src -> repo root */
const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const BINARY = resolve(REPO_ROOT, '.run/bin/mock-broker');
const BUILD_SCRIPT = resolve(REPO_ROOT, 'scripts/build-kafka-mock.sh');

let buildOnce: Promise<void> | undefined;

/** Build the binary when missing or stale (the script is a no-op otherwise). */
function ensureBinary(): Promise<void> {
  buildOnce ??= execFileAsync('bash', [BUILD_SCRIPT], { cwd: REPO_ROOT })
    .then(() => undefined)
    .catch((err: unknown) => {
      buildOnce = undefined;
      const stderr = (err as { stderr?: string }).stderr ?? '';
      throw new Error(`building mock-broker failed: ${String(err)}\n${stderr}`);
    });
  return buildOnce;
}

/**
 * Start a mock Kafka cluster with the given topics pre-created
 * (`{ 'danmaku.messages': 8 }`). The mock does not implement CreateTopics,
 * so every topic a test uses must be listed here.
 */
export async function startMockKafka(topics: Record<string, number>): Promise<MockKafka> {
  const specs = Object.entries(topics).map(([name, partitions]) => {
    if (!name || !Number.isInteger(partitions) || partitions < 1) {
      throw new Error(`invalid topic spec ${name}:${partitions}`);
    }
    return `${name}:${partitions}`;
  });

  // Always go through the build script (once per process): it compiles only
  // when the binary is missing or older than the .c source.
  await ensureBinary();

  const child = spawn(BINARY, specs, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    // Keep the tail for error messages; the mock logs little at log_level 4.
    stderr = (stderr + chunk).slice(-4096);
  });

  const exited = new Promise<void>((res) => {
    if (child.exitCode !== null || child.signalCode !== null) res();
    else child.once('exit', () => res());
  });

  const brokers = await new Promise<string[]>((res, rej) => {
    let out = '';
    const fail = (why: string): void => {
      cleanup();
      child.kill('SIGKILL');
      rej(new Error(`mock-broker: ${why}${stderr ? `\n${stderr}` : ''}`));
    };
    const onData = (chunk: string): void => {
      out += chunk;
      const m = /^BOOTSTRAP (\S+)\s*$/m.exec(out);
      if (m?.[1]) {
        cleanup();
        res(m[1].split(','));
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      fail(`exited before ready (code ${code}, signal ${signal})`);
    const onError = (err: Error): void => fail(`spawn failed: ${err.message}`);
    const timer = setTimeout(() => fail(`no BOOTSTRAP line within ${BOOT_TIMEOUT_MS} ms`), BOOT_TIMEOUT_MS);
    const cleanup = (): void => {
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', onData);
    child.once('exit', onExit);
    child.once('error', onError);
  });

  // Do not let the broker's pipes keep the event loop alive: a test that
  // forgets stop() still exits, and the closed stdin then stops the broker.
  child.stdout.resume();
  child.unref();
  for (const s of [child.stdin, child.stdout, child.stderr]) {
    (s as unknown as { unref?: () => void }).unref?.();
  }

  let stopping: Promise<void> | undefined;
  return {
    brokers,
    pid: child.pid ?? 0,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop(): Promise<void> {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          // A stopped process does not act on SIGTERM until it is continued.
          child.kill('SIGCONT');
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await exited;
          clearTimeout(timer);
        }
        child.stdin.destroy();
      })();
      return stopping;
    },
  };
}
