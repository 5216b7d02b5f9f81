import type { Config } from '@danmaku/config';
import { createRedis, waitReady } from './redis.js';
import { RedisStore } from './store.js';

/** The store a role needs, from config: the primary, and the replica when REDIS_READ_URL is set. */
export async function openStore(config: Config, name: string): Promise<{ store: RedisStore; close(): Promise<void> }> {
  const write = createRedis(config.redisUrl, { name, commandTimeoutMs: config.redisTimeoutMs });
  const read = config.redisReadUrl ? createRedis(config.redisReadUrl, { name: `${name}-read`, commandTimeoutMs: config.redisTimeoutMs }) : write;
  try {
    await Promise.all([waitReady(write), waitReady(read)]);
  } catch (err) {
    write.disconnect();
    read.disconnect();
    throw new Error(`cannot reach Redis at ${config.redisUrl}${config.redisReadUrl ? ` / ${config.redisReadUrl}` : ''}: ${(err as Error).message}`);
  }
  const store = new RedisStore({ write, read, retention: config.retention, dedupWindow: config.dedupWindow, onlineTtlMs: config.onlineTtlMs });
  return {
    store,
    async close() {
      await write.quit().catch(() => undefined);
      if (read !== write) await read.quit().catch(() => undefined);
    },
  };
}
