import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { waitFor } from './harness.js';

const run = promisify(execFile);

/** The application account, as scripts/infra.sh creates it for the shared server. */
const DB = { name: 'danmaku', user: 'danmaku', pass: 'danmaku' };

export interface TestMariaDb {
  /** mysql://danmaku:danmaku@127.0.0.1:PORT/danmaku (the MYSQL_URL format). */
  url: string;
  port: number;
  pid(): number | undefined;
  /** SIGKILLs mariadbd (a crash: InnoDB recovers on the next start). */
  kill(): Promise<void>;
  /** Starts it again on the same data directory and port; resolves when the app account can query. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

function mariadbdBin(): string {
  for (const candidate of ['/usr/sbin/mariadbd', '/usr/bin/mariadbd', '/usr/local/sbin/mariadbd']) if (existsSync(candidate)) return candidate;
  return 'mariadbd';
}

/**
 * A private MariaDB for tests that crash and restart the database (the shared one on 13306 must
 * stay up for everyone): its own data directory under the temp dir, its own port, the same server
 * flags and account as scripts/infra.sh's `up mysql` (no system config, loopback only, small buffers).
 */
export async function startMariaDb(options: { port: number }): Promise<TestMariaDb> {
  const { port } = options;
  const dir = mkdtempSync(join(tmpdir(), 'danmaku-mariadb-'));
  const datadir = join(dir, 'data');
  const socket = join(dir, 'mysql.sock');
  const osUser = userInfo().username;
  await run('mariadb-install-db', ['--no-defaults', `--datadir=${datadir}`, `--user=${osUser}`, '--skip-test-db'], { timeout: 120_000 });
  let child: ChildProcess | null = null;
  let exited: Promise<void> = Promise.resolve();
  let log = '';
  const onExit = (): void => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const admin = (sql: string): Promise<unknown> =>
    run('mariadb', ['--no-defaults', `--socket=${socket}`, `--user=${osUser}`, '--batch', '-e', sql], { timeout: 10_000 });

  const start = async (): Promise<void> => {
    const launched = spawn(
      mariadbdBin(),
      [
        '--no-defaults',
        ...(process.getuid?.() === 0 ? ['--user=root'] : []),
        `--datadir=${datadir}`, `--socket=${socket}`, `--pid-file=${join(dir, 'mysql.pid')}`,
        `--port=${port}`, '--bind-address=127.0.0.1', '--skip-name-resolve',
        '--character-set-server=utf8mb4', '--collation-server=utf8mb4_unicode_ci',
        '--innodb-buffer-pool-size=32M', '--innodb-log-file-size=16M', '--innodb-flush-log-at-trx-commit=2',
        '--key-buffer-size=8M', '--performance-schema=OFF', '--max-connections=300',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    child = launched;
    launched.stderr?.on('data', (chunk: Buffer) => (log = (log + chunk.toString()).slice(-4000)));
    exited = new Promise((resolve) => launched.once('exit', () => resolve()));
    await waitFor(`mariadbd on ${port}`, async () => {
      if (launched.exitCode !== null || launched.signalCode !== null) throw new Error(`mariadbd exited:\n${log}`);
      await admin('SELECT 1');
      return true;
    }, 60_000, 100);
  };

  await start();
  await admin(
    [
      `CREATE DATABASE IF NOT EXISTS \`${DB.name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`,
      `CREATE USER IF NOT EXISTS '${DB.user}'@'127.0.0.1' IDENTIFIED BY '${DB.pass}'`,
      `GRANT ALL PRIVILEGES ON *.* TO '${DB.user}'@'127.0.0.1'`,
      'FLUSH PRIVILEGES',
    ].join(';\n'),
  );
  const kill = async (): Promise<void> => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  return {
    url: `mysql://${DB.user}:${DB.pass}@127.0.0.1:${port}/${DB.name}`,
    port,
    pid: () => child?.pid,
    kill,
    start,
    async stop() {
      await kill();
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
