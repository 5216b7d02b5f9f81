import { Redis, ReplyError } from 'ioredis';
import { unavailable } from '@danmaku/model';
import { histogram } from '@danmaku/observability';

export { Redis } from 'ioredis';

export interface RedisOptions {
  /** A command not answered by then fails, so callers answer 503 instead of hanging. */
  commandTimeoutMs?: number;
  /** Connection name shown by CLIENT LIST, to tell the roles apart. */
  name?: string;
}

/**
 * A Redis client that fails fast: no offline queue (a command while disconnected fails at once),
 * one retry, a command timeout. It reconnects by itself in the background.
 */
export function createRedis(url: string, options: RedisOptions = {}): Redis {
  const redis = new Redis(url, {
    connectionName: options.name,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: options.commandTimeoutMs ?? 800,
    connectTimeout: 2000,
    retryStrategy: (times) => Math.min(100 * times, 2000),
    lazyConnect: false,
    // No enableAutoPipelining: it saves a few syscalls, but in ioredis 5.11 a pipeline that comes
    // back short (a script reloaded after NOSCRIPT, a dropped connection) throws inside its
    // callback loop, and every later command of that batch never settles: a hang, seen in CI.
  });
  // ioredis logs unhandled 'error' events loudly; reconnects are expected, readiness reports them.
  redis.on('error', () => undefined);
  coalesceWrites(redis);
  return redis;
}

interface CorkableStream {
  write(...args: unknown[]): boolean;
  cork(): void;
  uncork(): void;
}

const coalesced = new WeakSet<object>();

/**
 * ioredis writes every command to its socket at once: under load, one syscall per command, and on
 * this kind of machine a loopback write is the most expensive line of the send path. Corking the
 * socket until the end of the event-loop turn sends what the turn's I/O callbacks asked for (many
 * requests' checks, a batch's script and its announcement) in one writev, in the same order, so
 * replies and their matching are untouched; the delay is the rest of the turn. Unlike ioredis'
 * enableAutoPipelining nothing about the commands changes, only how the bytes leave.
 */
export function coalesceWrites(redis: Redis): void {
  const wrap = (): void => {
    const stream = (redis as unknown as { stream?: CorkableStream }).stream;
    if (!stream || coalesced.has(stream)) return;
    coalesced.add(stream);
    const write = stream.write.bind(stream);
    let corked = false;
    const flush = (): void => {
      corked = false;
      stream.uncork();
    };
    stream.write = (...args: unknown[]): boolean => {
      if (!corked) {
        corked = true;
        stream.cork();
        setImmediate(flush);
      }
      return write(...args);
    };
  };
  wrap();
  redis.on('connect', wrap);
}

/** Resolves once the client is ready; rejects after timeoutMs. */
export async function waitReady(redis: Redis, timeoutMs = 10_000): Promise<void> {
  if (redis.status === 'ready') return;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      redis.off('ready', onReady);
      reject(new Error(`Redis not ready after ${timeoutMs} ms (status ${redis.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    redis.once('ready', onReady);
  });
}

/**
 * Runs a Redis call and turns connection trouble (refused, closed, timed out) into a 503;
 * a ReplyError is a bug in a command or script and stays what it is.
 */
export async function guard<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ReplyError) throw err;
    throw unavailable('redis');
  }
}

/**
 * Registers Lua scripts as commands on a client (EVALSHA, falling back to EVAL once), and returns
 * the client typed with them. Idempotent: roles sharing a client in standalone may all call it.
 */
export function defineScripts<T extends Redis>(redis: Redis, scripts: Record<string, { keys: number; lua: string }>): T {
  const commands = redis as unknown as Record<string, unknown>;
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (typeof commands[name] !== 'function') redis.defineCommand(name, { numberOfKeys: keys, lua });
  }
  return redis as T;
}

/** Latency of Redis calls on the hot paths, by operation; shared by every role. */
export const redisSeconds = histogram<'op'>({
  name: 'danmaku_redis_seconds',
  help: 'Latency of Redis calls on the hot paths, by operation',
  labelNames: ['op'],
  buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
});
