import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './harness.js';

const run = promisify(execFile);

/** Ports tests may use for private clusters; the dev cluster of `infra.sh up redis-cluster` sits below. */
const TEST_PORT_FIRST = 17010;
const TEST_PORT_LAST = 17099;
/** The cluster bus of a node listens on its port + 10000. */
const BUS_OFFSET = 10_000;

export interface ClusterNode {
  port: number;
  /** `127.0.0.1:port`. */
  address: string;
}

export interface TestRedisCluster {
  /** Seed nodes, `host:port,...` (the REDIS_CLUSTER_NODES format). */
  seeds: string;
  nodes: ClusterNode[];
  /** Current primaries with their slot ranges, from CLUSTER SHARDS of a live node. */
  primaries(): Promise<{ port: number; slots: [number, number][] }[]>;
  /** SIGKILLs one node (a crash, no goodbye). */
  kill(port: number): void;
  /** Starts a killed node again; it rejoins (as a replica of whoever took its slots). */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/** Six consecutive ports whose bus ports are free too, from a random start so parallel runs rarely race. */
async function pickPorts(count: number): Promise<number[]> {
  const span = TEST_PORT_LAST - TEST_PORT_FIRST + 1 - count;
  const offset = Math.floor(Math.random() * span);
  for (let i = 0; i <= span; i++) {
    const first = TEST_PORT_FIRST + ((offset + i) % (span + 1));
    const ports = Array.from({ length: count }, (_, k) => first + k);
    let ok = true;
    for (const p of ports) if (!(await portFree(p)) || !(await portFree(p + BUS_OFFSET))) ok = false;
    if (ok) return ports;
  }
  throw new Error(`no ${count} free ports in ${TEST_PORT_FIRST}-${TEST_PORT_LAST} (and +${BUS_OFFSET}) for a test Redis Cluster`);
}

async function cli(port: number, ...args: string[]): Promise<string> {
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...args], { timeout: 10_000 });
  return stdout;
}

/**
 * A private Redis Cluster for a test: 3 primaries + 3 replicas of Debian's redis-server on
 * loopback, in memory only. A short node timeout (1 s) makes failover quick enough to test.
 */
export async function startRedisCluster(options: { nodeTimeoutMs?: number } = {}): Promise<TestRedisCluster> {
  const ports = await pickPorts(6);
  const dir = mkdtempSync(join(tmpdir(), 'danmaku-cluster-'));
  const children = new Map<number, ChildProcess>();
  const exits: Promise<void>[] = [];
  const stopAll = async (): Promise<void> => {
    for (const child of children.values()) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await Promise.all(exits);
    rmSync(dir, { recursive: true, force: true });
  };
  const launch = (port: number): void => {
    const child = spawn(
      'redis-server',
      [
        '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir,
        '--dbfilename', `dump-${port}.rdb`,
        '--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(options.nodeTimeoutMs ?? 1000),
        // A replica with stale data may still be promoted: the test measures what is lost.
        '--cluster-replica-validity-factor', '0',
        // Replicas sync at once instead of after the default 5 s diskless delay.
        '--repl-diskless-sync-delay', '0',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    children.set(port, child);
    exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
  };
  process.once('exit', () => {
    for (const child of children.values()) if (child.exitCode === null) child.kill('SIGKILL');
  });
  try {
    for (const port of ports) launch(port);
    for (const port of ports) await waitFor(`cluster node ${port}`, async () => (await cli(port, 'ping').catch(() => '')).trim() === 'PONG', 10_000, 50);

    await run('redis-cli', ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    for (const port of ports) {
      await waitFor(`cluster state ok on ${port}`, async () => /cluster_state:ok/.test(await cli(port, 'cluster', 'info').catch(() => '')), 20_000, 100);
    }
    // Replicas attach asynchronously after creation; wait until each primary has one.
    await waitFor('every primary to have a replica', async () => {
      const text = await cli(ports[0] as number, 'cluster', 'nodes');
      const flags = text.trim().split('\n').map((l) => l.split(' ')[2] ?? '');
      const primaries = flags.filter((f) => f.includes('master') && !f.includes('fail'));
      const replicas = flags.filter((f) => f.includes('slave'));
      return primaries.length === 3 && replicas.length === 3;
    }, 20_000, 100);
    // ...and until every replica finished its first sync (WAIT counts only online replicas).
    for (const port of ports) {
      await waitFor(`replication settled on ${port}`, async () => {
        const info = await cli(port, 'info', 'replication');
        if (/role:master/.test(info)) return /slave0:.*state=online/.test(info);
        return /master_link_status:up/.test(info);
      }, 20_000, 100);
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const nodes = ports.map((port) => ({ port, address: `127.0.0.1:${port}` }));
  return {
    seeds: nodes.map((n) => n.address).join(','),
    nodes,
    async primaries() {
      for (const port of ports) {
        const child = children.get(port);
        if (!child || child.exitCode !== null || child.signalCode !== null) continue;
        const text = await cli(port, 'cluster', 'nodes').catch(() => '');
        if (!text) continue;
        const out: { port: number; slots: [number, number][] }[] = [];
        for (const line of text.trim().split('\n')) {
          const parts = line.split(' ');
          if (!(parts[2] ?? '').includes('master') || (parts[2] ?? '').includes('fail')) continue;
          const slots: [number, number][] = [];
          for (const range of parts.slice(8)) {
            if (range.startsWith('[')) continue;
            const [a, b] = range.split('-').map(Number);
            slots.push([a as number, b ?? (a as number)]);
          }
          if (slots.length === 0) continue;
          out.push({ port: Number((parts[1] ?? '').split(':')[1]?.split('@')[0]), slots });
        }
        return out.sort((x, y) => (x.slots[0]?.[0] ?? 0) - (y.slots[0]?.[0] ?? 0));
      }
      return [];
    },
    kill(port) {
      children.get(port)?.kill('SIGKILL');
    },
    async restart(port) {
      launch(port);
      await waitFor(`cluster node ${port} back`, async () => /cluster_state:ok/.test(await cli(port, 'cluster', 'info').catch(() => '')), 20_000, 100);
    },
    stop: stopAll,
  };
}
