/**
 * Starts a topology the way a user does (`npm run start:split`, `npm run start:cluster`: the
 * scripts themselves, with the infrastructure they bring up), waits for every role to answer
 * /readyz. Infrastructure the
 * run started (Kafka brokers, the Redis Cluster) is stopped again afterwards; what was already up
 * is left alone.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { REPO_ROOT, waitFor } from './harness.js';

export interface RunningTopology {
  /** Ports by role name, as given to the script. */
  ports: Record<string, number>;
  output(): string;
  stop(): Promise<void>;
}

function infraUp(): Set<string> {
  const status = execFileSync('bash', ['scripts/infra.sh', 'status'], { cwd: REPO_ROOT, encoding: 'utf8' });
  return new Set(status.split('\n').filter((l) => / up /.test(l)).map((l) => l.split(/\s+/)[0] as string));
}

/**
 * Runs `npm run SCRIPT` with the role ports given (a developer's own servers on the defaults stay
 * untouched) and waits until every role in `ports` is ready.
 */
export async function startTopology(script: 'start:split' | 'start:cluster', portEnv: Record<string, string>, readyRoles: Record<string, string>, services: string[]): Promise<RunningTopology> {
  const before = infraUp();
  const child: ChildProcess = spawn('npm', ['run', '-s', script], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...portEnv, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  child.stderr?.on('data', (c: Buffer) => (out = (out + c.toString()).slice(-20_000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  process.once('exit', () => killGroup('SIGKILL'));
  const stop = async (): Promise<void> => {
    killGroup('SIGINT');
    const timer = setTimeout(() => killGroup('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
    const started = services.filter((s) => !before.has(s));
    if (started.length > 0) execFileSync('bash', ['scripts/infra.sh', 'down', ...started], { cwd: REPO_ROOT, stdio: 'ignore' });
  };
  const ports = Object.fromEntries(Object.entries(readyRoles).map(([name, port]) => [name, Number(port)]));
  try {
    for (const [name, port] of Object.entries(ports)) {
      await waitFor(
        `${name} ready on ${port}`,
        async () => {
          if (child.exitCode !== null) throw new Error(`${script} exited (${child.exitCode}):\n${out}`);
          const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => null);
          return res?.status === 200;
        },
        240_000,
        250,
      );
    }
  } catch (err) {
    await stop();
    throw new Error(`${(err as Error).message}\n--- output of ${script} ---\n${out}`);
  }
  return { ports, output: () => out, stop };
}

/** The settings whose ports a topology script takes (freePorts picks them). */
export const TOPOLOGY_PORTS = ['PORT', 'ROUTER_PORT', 'CONNECTOR_PORT', 'PROCESSOR_PORT', 'ARCHIVER_PORT', 'PUSHER_PORT', 'DANMAKU_BILI_TCP_PORT'];

/**
 * Each role's /readyz port as the script derives it from the settings: start:split runs one of
 * each (`copies` 1), start:cluster two (scripts/start-cluster.ts: the second front and connector
 * on the next port, the second processor, archiver and pusher ten further), the router once.
 */
export function topologyRoles(env: Record<string, string>, copies: 1 | 2): Record<string, string> {
  const n = (key: string, plus = 0): string => String(Number(env[key]) + plus);
  const roles: Record<string, string> = { router: n('ROUTER_PORT') };
  for (let i = 0; i < copies; i++) {
    roles[`front-${i + 1}`] = n('PORT', i);
    roles[`connector-${i + 1}`] = n('CONNECTOR_PORT', i);
    roles[`processor-${i + 1}`] = n('PROCESSOR_PORT', i * 10);
    roles[`archiver-${i + 1}`] = n('ARCHIVER_PORT', i * 10);
    roles[`pusher-${i + 1}`] = n('PUSHER_PORT', i * 10);
  }
  return roles;
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Ports each setting may derive copies from: start:cluster puts a second front on PORT + 1, a second processor on PROCESSOR_PORT + 10. */
const SLOT = 20;

/**
 * Ports for the named settings of a topology script: setting i gets base + 20 i of a block of
 * free ports below the ephemeral range, so the copies a script derives from one setting never land
 * on another's.
 */
export async function freePorts(names: string[]): Promise<Record<string, string>> {
  const size = names.length * SLOT;
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 21_000 + Math.floor(Math.random() * 4000);
    const free = await Promise.all(Array.from({ length: size }, (_, i) => portFree(base + i)));
    if (free.every(Boolean)) return Object.fromEntries(names.map((name, i) => [name, String(base + i * SLOT)]));
  }
  throw new Error(`no block of ${size} free ports in 21000-25000`);
}
