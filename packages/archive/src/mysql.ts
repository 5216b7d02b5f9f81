import mysql, { type Pool, type PoolOptions } from 'mysql2/promise';
import { unavailable } from '@danmaku/model';

export type { Pool } from 'mysql2/promise';

export interface MysqlOptions {
  /** Connections per process. */
  connectionLimit?: number;
  /** A query not answered by then fails (clients get a 503, the archiver retries the batch). */
  queryTimeoutMs?: number;
}

function poolOptions(url: string, options: MysqlOptions): PoolOptions {
  return {
    uri: url,
    connectionLimit: options.connectionLimit ?? 8,
    // Fail fast: a front must answer 503 quickly when MySQL is away, never queue for long.
    connectTimeout: 2000,
    waitForConnections: true,
    queueLimit: 200,
    enableKeepAlive: true,
    supportBigNumbers: true,
    charset: 'utf8mb4',
  };
}

/** A mysql2 pool; nothing is connected until the first query. */
export function createMysql(url: string, options: MysqlOptions = {}): Pool {
  const pool = mysql.createPool(poolOptions(url, options));
  // Idle connections dropped by the server surface here; the pool reconnects on the next query.
  pool.on('connection', (conn) => conn.on('error', () => undefined));
  return pool;
}

/**
 * The database named in the URL, created when missing: a fresh machine (or a test) needs no
 * manual step before the migrations run.
 */
export async function ensureDatabase(url: string): Promise<void> {
  const parsed = new URL(url);
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_]{1,64}$/.test(database)) throw new Error(`MYSQL_URL must name a database of letters, digits and _ (got "${database}")`);
  parsed.pathname = '/';
  const conn = await mysql.createConnection({ uri: parsed.toString(), connectTimeout: 2000 });
  try {
    await conn.query(`CREATE DATABASE IF NOT EXISTS \`${database}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  } finally {
    await conn.end().catch(() => undefined);
  }
}

/** MySQL errors of a query a client asked for -> 503 with Retry-After (API.md). */
export async function guardMysql<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (isSqlBug(err)) throw err;
    throw unavailable('archive');
  }
}

/** Errors that retrying cannot fix: a bad statement, not an absent server. */
function isSqlBug(err: unknown): boolean {
  const code = (err as { code?: string }).code ?? '';
  return code === 'ER_PARSE_ERROR' || code === 'ER_BAD_FIELD_ERROR' || code === 'ER_NO_SUCH_TABLE' || code === 'ER_WRONG_VALUE_COUNT_ON_ROW';
}

/** Applies a per-query timeout (mysql2's `timeout`) to a statement. */
export function withTimeout(sql: string, timeoutMs: number): { sql: string; timeout: number } {
  return { sql, timeout: timeoutMs };
}
