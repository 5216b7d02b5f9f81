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
 *
 * Commands go out auto-pipelined: those issued in one event-loop turn leave in one write (on this
 * kind of machine a loopback write is the most expensive line of the send path), in order, each
 * with its own reply. Every script registered with registerScripts is defined here, before the
 * client carries any command; see defineScripts for why that matters.
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
    enableAutoPipelining: true,
  });
  // ioredis logs unhandled 'error' events loudly; reconnects are expected, readiness reports them.
  redis.on('error', () => undefined);
  defineRegistered(redis);
  return redis;
}

export type ScriptDefinitions = Record<string, { keys: number; lua: string }>;

/** Every script of the process by command name, filled as the modules that own them load. */
const registry = new Map<string, { keys: number; lua: string }>();

/**
 * Declares scripts at module load (a module's top level), so every client made afterwards has
 * them from its start. Returns the same definitions, for defineScripts.
 */
export function registerScripts<D extends ScriptDefinitions>(scripts: D): D {
  for (const [name, script] of Object.entries(scripts)) {
    const known = registry.get(name);
    if (known && known.lua !== script.lua) throw new Error(`two different Redis scripts are named ${name}`);
    registry.set(name, script);
  }
  return scripts;
}

/** Defines every registered script on a new client (createRedis, createCluster). */
export function defineRegistered(redis: Pick<Redis, 'defineCommand'>): void {
  for (const [name, { keys, lua }] of registry) redis.defineCommand(name, { numberOfKeys: keys, lua });
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
 * Returns the client typed with its scripts (EVALSHA, falling back to EVAL once), defining any it
 * lacks. Idempotent: roles sharing a client in standalone may all call it.
 *
 * A script is meant to be defined already (registerScripts, then createRedis). Defining one on a
 * client with commands waiting in an auto-pipeline is refused: ioredis (5.11) gives each
 * auto-pipeline the custom commands its client had when the pipeline was made, so a call of the
 * new script joining that pipeline throws before it is queued, but its reply slot was already
 * taken; the pipeline comes back one reply short, ioredis' loop over the replies throws on the
 * missing one, the callbacks after it never run and the client's next pipeline is never sent:
 * every later command of that client hangs. That was the hang seen in CI when auto-pipelining was
 * first tried (a store made on a client in the same turn as other commands).
 */
export function defineScripts<T extends Redis>(redis: Redis, scripts: ScriptDefinitions): T {
  const commands = redis as unknown as Record<string, unknown>;
  for (const [name, { keys, lua }] of Object.entries(scripts)) {
    if (typeof commands[name] === 'function') continue;
    if (redis.autoPipelineQueueSize > 0) {
      throw new Error(`Redis script ${name} defined on a client already carrying commands: declare it with registerScripts when its module loads`);
    }
    redis.defineCommand(name, { numberOfKeys: keys, lua });
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
