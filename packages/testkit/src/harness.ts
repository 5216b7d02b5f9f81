import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { createAuth, type Role } from '@danmaku/auth';
import { loadConfig, type Config } from '@danmaku/config';
import { nodeArgs } from '@danmaku/role/entry';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** Children still running when the test process exits are killed, so nothing outlives a test. */
const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

/** A room id no other test (or earlier run) uses. */
export function uniqueRoom(prefix = 'room'): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

/** Config for a test: the test Redis/MySQL from the environment, any free port, quiet logs. */
export function testConfig(overrides: Partial<Config> = {}): Config {
  // No Bilibili TCP listener unless a test asks: the default port would clash between parallel tests.
  return loadConfig({ DANMAKU_BILI_TCP_PORT: '0', ...process.env, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', PORT: '0' }, overrides);
}

export function tokenFor(sub: string, role: Role = 'viewer', rooms?: string[], config: Config = testConfig()): string {
  return createAuth(config.jwtSecret).sign({ sub, name: `name-${sub}`, role, ...(rooms ? { rooms } : {}) });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `check` until it returns a truthy value; throws with `what` after `timeoutMs`. */
export async function waitFor<T>(what: string, check: () => Promise<T> | T, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    }
    await sleep(everyMs);
  }
}

export interface Spawned {
  child: ChildProcess;
  /** Everything the process printed so far (stdout and stderr). */
  output(): string;
  /** Resolves when a line matching `pattern` was printed. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * Runs an entry point of the repo named by its TypeScript path as a real process: a workspace's
 * (a role's `apps/processor/src/main.ts`) compiled, as users run it, anything else (a fixture)
 * through tsx (`@danmaku/role/entry`). Its stdin is a pipe, so a child that watches stdin dies
 * with the test.
 */
export function spawnTs(entry: string, env: NodeJS.ProcessEnv = {}, args: string[] = [], nodeFlags: string[] = []): Spawned {
  // Flags such as --cpu-prof are not allowed in NODE_OPTIONS, so they go on the command line.
  const child = spawn(process.execPath, [...nodeFlags, ...nodeArgs(REPO_ROOT, entry), ...args], {
    cwd: REPO_ROOT,
    env: { DANMAKU_BILI_TCP_PORT: '0', ...process.env, ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.add(child);
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return {
    child,
    output: () => text,
    // A loaded 2-core machine can take many seconds to start a role (a fixture also compiles its TypeScript).
    waitForOutput: (pattern, timeoutMs = 60_000) =>
      waitFor(`${entry} to print ${pattern}`, () => {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${entry} exited with ${child.exitCode ?? child.signalCode}:\n${text}`);
        return pattern.test(text);
      }, timeoutMs).then(
        () => undefined,
        (err: unknown) => {
          // What it printed is what says why it did not get there.
          throw new Error(`${(err as Error).message}\n${entry} printed (last 3,000 characters): ${text.slice(-3000) || '(nothing)'}`);
        },
      ),
    kill: async (signal = 'SIGTERM') => {
      if (child.exitCode === null) child.kill(signal);
      return exited;
    },
  };
}

export interface TestRedis {
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * A private redis-server for tests that stop, restart or replicate Redis without disturbing
 * the shared one. `replicaOf` makes it a replica (the two-machine-room layout).
 */
export async function startRedis(options: { port?: number; replicaOf?: number } = {}): Promise<TestRedis> {
  const port = options.port ?? (await freePort());
  const dir = mkdtempSync(join(tmpdir(), 'danmaku-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir];
  if (options.replicaOf) args.push('--replicaof', '127.0.0.1', String(options.replicaOf));
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let text = '';
  child.stdout?.on('data', (chunk: Buffer) => (text += chunk.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
  await waitFor(`redis-server on ${port}`, () => {
    if (child.exitCode !== null) throw new Error(`redis-server exited:\n${text}`);
    return /Ready to accept connections/.test(text);
  });
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/**
 * Environment for spawned roles under load: rate limits and big-room polling limits that would
 * throttle a load test are lifted, and the retention holds what a run sends. Logs at info, since
 * tests wait for the roles' log lines.
 */
export const LOAD_ENV: Readonly<Record<string, string>> = {
  LOG_LEVEL: 'info',
  DANMAKU_RATE_USER_MAX: '100000000',
  DANMAKU_RATE_IP_MAX: '100000000',
  DANMAKU_BIG_ROOM_POLL_RATE: '100000000',
  DANMAKU_BIG_ROOM_ONLINE: '100000000',
  DANMAKU_RETENTION: '20000',
};
