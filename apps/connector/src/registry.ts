import type { Logger } from '@danmaku/observability';
import { HEARTBEAT_MS, SUBSCRIBERS_TTL_S, pushKeys, registerConnector, unregisterConnector } from '@danmaku/push';
import { execSpread, type Command, type Redis } from '@danmaku/store';
import type { RoomHub } from './rooms.js';

export interface RegistryOptions {
  redis: Redis;
  cluster: string;
  nodeId: string;
  url: string;
  /** The Bilibili-protocol endpoints (WebSocket URL, TCP host:port or null). */
  bilibili?: { ws: string; tcp: string | null };
  hub: RoomHub;
  /** Open connections on every transport (the router orders nodes by it). */
  sessions: () => number;
  logger: Logger;
}

export interface Registry {
  /** A room's socket count on this node changed; written to Redis within a few ms. */
  roomChanged(roomId: string, sockets: number): void;
  /** From now on the node says it is draining (written at once): routers stop handing it out. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

/** How soon membership changes reach the pusher: joins within one burst share a write. */
const FLUSH_MS = 20;
/** All counts are rewritten this often so their TTL never runs out while the node lives. */
const REFRESH_MS = (SUBSCRIBERS_TTL_S * 1000) / 3;

/**
 * This node in the router's registry (heartbeat + load) and in the pusher's room -> node
 * subscriber counts. Both are plain Redis data: a node that dies stops beating and is skipped
 * within NODE_TTL_MS; its counts expire.
 */
export async function startRegistry(options: RegistryOptions): Promise<Registry> {
  const { redis, cluster, nodeId, hub, logger } = options;
  const dirty = new Map<string, number>();
  let flushTimer: NodeJS.Timeout | null = null;
  let stopped = false;
  let draining = false;

  const beat = async (): Promise<void> => {
    await registerConnector(redis, cluster, {
      id: nodeId,
      url: options.url,
      sockets: options.sessions(),
      rooms: hub.rooms.size,
      ts: Date.now(),
      ...(options.bilibili ? { bilibili: options.bilibili } : {}),
      ...(draining ? { draining } : {}),
    });
  };

  const write = async (counts: Map<string, number>): Promise<void> => {
    if (counts.size === 0) return;
    // One slot per room: one pipeline, or one per node on a cluster.
    const commands: Command[] = [];
    for (const [roomId, sockets] of counts) {
      const key = pushKeys.subscribers(cluster, roomId);
      if (sockets > 0) commands.push(['hset', key, nodeId, sockets], ['expire', key, SUBSCRIBERS_TTL_S]);
      else commands.push(['hdel', key, nodeId]);
    }
    const replies = await execSpread(redis, commands);
    const failed = replies.find(([err]) => err);
    if (failed) throw failed[0];
  };

  const flush = (): void => {
    flushTimer = null;
    const counts = new Map(dirty);
    dirty.clear();
    write(counts).catch((err: unknown) => {
      // Put them back: the next change or refresh retries.
      for (const [roomId, sockets] of counts) if (!dirty.has(roomId)) dirty.set(roomId, sockets);
      logger.warn({ err }, 'could not write room subscriber counts');
    });
  };

  await beat();
  const beatTimer = setInterval(() => void beat().catch((err: unknown) => logger.warn({ err }, 'heartbeat failed')), HEARTBEAT_MS);
  beatTimer.unref();
  const refreshTimer = setInterval(() => {
    for (const room of hub.rooms.values()) if (!dirty.has(room.id)) dirty.set(room.id, room.sockets);
    if (!flushTimer && dirty.size > 0) flushTimer = setTimeout(flush, 0);
  }, REFRESH_MS);
  refreshTimer.unref();

  return {
    roomChanged(roomId, sockets) {
      if (stopped) return;
      dirty.set(roomId, sockets);
      flushTimer ??= setTimeout(flush, FLUSH_MS);
    },
    async drain() {
      draining = true;
      await beat().catch((err: unknown) => logger.warn({ err }, 'could not say draining; routers see it at the next heartbeat'));
    },
    async stop() {
      stopped = true;
      clearInterval(beatTimer);
      clearInterval(refreshTimer);
      if (flushTimer) clearTimeout(flushTimer);
      const gone = new Map<string, number>();
      for (const roomId of hub.rooms.keys()) gone.set(roomId, 0);
      await write(gone).catch(() => undefined);
      await unregisterConnector(redis, cluster, nodeId).catch(() => undefined);
    },
  };
}
