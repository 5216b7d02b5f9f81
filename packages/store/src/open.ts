import type { Config } from '@danmaku/config';
import type { Redis } from 'ioredis';
import { asRedis, createCluster } from './cluster.js';
import { createRedis, waitReady } from './redis.js';
import { RedisStore } from './store.js';

type StoreConfig = Pick<
  Config,
  'redisUrl' | 'redisReadUrl' | 'redisClusterNodes' | 'redisClusterReplicaReads' | 'redisTimeoutMs' | 'retention' | 'dedupWindow' | 'onlineTtlMs' | 'roomTtlS' | 'redisWaitReplicas' | 'redisWaitTimeoutMs'
>;

/** Where the store lives, in words for logs and errors. */
export function describeRedis(config: Pick<Config, 'redisUrl' | 'redisReadUrl' | 'redisClusterNodes'>): string {
  if (config.redisClusterNodes) return `Redis Cluster ${config.redisClusterNodes}`;
  return `Redis at ${config.redisUrl}${config.redisReadUrl ? ` / ${config.redisReadUrl}` : ''}`;
}

/**
 * The clients a role needs, from config: on a cluster (REDIS_CLUSTER_NODES) one cluster client
 * for writes and one for reads (replicas when DANMAKU_REDIS_CLUSTER_REPLICA_READS=1); otherwise
 * the primary and the replica of REDIS_READ_URL.
 */
export async function openClients(config: StoreConfig, name: string): Promise<{ write: Redis; read: Redis; close(): Promise<void> }> {
  let write: Redis;
  let read: Redis;
  if (config.redisClusterNodes) {
    write = asRedis(createCluster(config.redisClusterNodes, { name, commandTimeoutMs: config.redisTimeoutMs }));
    read = config.redisClusterReplicaReads
      ? asRedis(createCluster(config.redisClusterNodes, { name: `${name}-read`, commandTimeoutMs: config.redisTimeoutMs, replicaReads: true }))
      : write;
  } else {
    write = createRedis(config.redisUrl, { name, commandTimeoutMs: config.redisTimeoutMs });
    read = config.redisReadUrl ? createRedis(config.redisReadUrl, { name: `${name}-read`, commandTimeoutMs: config.redisTimeoutMs }) : write;
  }
  try {
    await Promise.all([waitReady(write), waitReady(read)]);
  } catch (err) {
    write.disconnect();
    read.disconnect();
    throw new Error(`cannot reach ${describeRedis(config)}: ${(err as Error).message}`);
  }
  return {
    write,
    read,
    async close() {
      // A quit that fails (Redis down, or slower than the command timeout) leaves the client
      // connected or reconnecting for good: it is cut instead.
      await write.quit().catch(() => write.disconnect());
      if (read !== write) await read.quit().catch(() => read.disconnect());
    },
  };
}

/** The store a role needs, from config. */
export async function openStore(config: StoreConfig, name: string): Promise<{ store: RedisStore; close(): Promise<void> }> {
  const { write, read, close } = await openClients(config, name);
  const store = new RedisStore({
    write,
    read,
    retention: config.retention,
    dedupWindow: config.dedupWindow,
    onlineTtlMs: config.onlineTtlMs,
    roomTtlS: config.roomTtlS,
    waitReplicas: config.redisWaitReplicas,
    waitTimeoutMs: config.redisWaitTimeoutMs,
  });
  return { store, close };
}
