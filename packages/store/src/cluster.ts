import { Cluster, Redis } from 'ioredis';
import { slotOf } from './keys.js';
import { defineRegistered } from './redis.js';

export { Cluster } from 'ioredis';

export interface ClusterOptions {
  commandTimeoutMs?: number;
  name?: string;
  /** Reads may go to replicas (the cluster's form of REDIS_READ_URL). */
  replicaReads?: boolean;
  /** One subscriber connection per primary for SSUBSCRIBE. */
  shardedSubscribers?: boolean;
}

/** `host:port,host:port` -> ioredis startup nodes. */
export function parseSeeds(seeds: string): { host: string; port: number }[] {
  return seeds
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((s) => {
      const colon = s.lastIndexOf(':');
      const host = colon === -1 ? s : s.slice(0, colon);
      const port = colon === -1 ? 6379 : Number(s.slice(colon + 1));
      if (!host || !Number.isInteger(port) || port <= 0) throw new Error(`bad Redis Cluster seed "${s}" (want host:port)`);
      return { host, port };
    });
}

/**
 * An ioredis Cluster that fails fast like createRedis: no offline queue once connected, a command
 * timeout, and MOVED/ASK/TRYAGAIN retried by ioredis while a failover settles.
 */
export function createCluster(seeds: string, options: ClusterOptions = {}): Cluster {
  const cluster = new Cluster(parseSeeds(seeds), {
    scaleReads: options.replicaReads ? 'slave' : 'master',
    shardedSubscribers: options.shardedSubscribers ?? false,
    // Offline queue on: during a failover (about node-timeout long) commands wait for the new
    // slot map instead of failing; the command timeout still bounds every call.
    enableOfflineQueue: true,
    enableReadyCheck: true,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 200,
    retryDelayOnTryAgain: 100,
    slotsRefreshTimeout: 2000,
    slotsRefreshInterval: 2000,
    clusterRetryStrategy: (times) => Math.min(100 * times, 2000),
    // As createRedis: the commands of one turn bound for the same nodes leave in one write.
    enableAutoPipelining: true,
    redisOptions: {
      connectionName: options.name,
      commandTimeout: options.commandTimeoutMs ?? 800,
      connectTimeout: 2000,
      maxRetriesPerRequest: 1,
    },
  });
  cluster.on('error', () => undefined);
  defineRegistered(cluster);
  return cluster;
}

/**
 * A Redis Cluster client typed as a single-instance client. ioredis' Cluster implements the same
 * command interface (Commander), so every command, pipeline, MULTI and script call of the roles
 * compiles and runs unchanged; what differs (SUBSCRIBE on a cluster, DUPLICATE, multi-slot
 * pipelines) goes through this package's Signals and execSpread instead.
 */
export function asRedis(cluster: Cluster): Redis {
  return cluster as unknown as Redis;
}

export function isCluster(client: Redis | Cluster): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true;
}

export type Command = [name: string, key: string, ...args: (string | number | Buffer)[]];
export type CommandReply = [error: Error | null, value: unknown];

/**
 * Runs commands that may touch many slots (one per room, say): one pipeline on a single Redis;
 * on a cluster one pipeline per node owning the slots, all in flight at once. Replies come back in
 * the order of `commands`. Custom script commands (defineCommand) may be named too.
 */
export async function execSpread(client: Redis | Cluster, commands: readonly Command[]): Promise<CommandReply[]> {
  if (commands.length === 0) return [];
  if (!isCluster(client)) return ((await client.pipeline(commands as unknown as string[][]).exec()) ?? []) as CommandReply[];
  const groups = new Map<string, number[]>();
  commands.forEach((command, i) => {
    const slot = slotOf(command[1]);
    const node = client.slots[slot]?.[0] ?? `slot:${slot}`;
    const list = groups.get(node);
    if (list) list.push(i);
    else groups.set(node, [i]);
  });
  const out: CommandReply[] = new Array(commands.length);
  await Promise.all(
    [...groups.values()].map(async (indexes) => {
      let replies: CommandReply[];
      try {
        replies = ((await client.pipeline(indexes.map((i) => commands[i]) as unknown as string[][]).exec()) ?? []) as CommandReply[];
      } catch {
        // The slot map moved under us (failover): one command at a time, each routed by ioredis.
        replies = await Promise.all(
          indexes.map(async (i) => {
            const [name, ...args] = commands[i] as Command;
            try {
              const call = (client as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>)[name];
              if (!call) throw new Error(`unknown command ${name}`);
              return [null, await call.apply(client, args)] as CommandReply;
            } catch (err) {
              return [err as Error, null] as CommandReply;
            }
          }),
        );
      }
      indexes.forEach((i, k) => (out[i] = replies[k] ?? [new Error('no reply'), null]));
    }),
  );
  return out;
}

/** The primary that owns a key's slot, for commands that must run there (WAIT after a write). */
export function nodeOfKey(cluster: Cluster, key: string): Redis | null {
  const address = cluster.slots[slotOf(key)]?.[0];
  if (!address) return null;
  return cluster.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === address) ?? null;
}
