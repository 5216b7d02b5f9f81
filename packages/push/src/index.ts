/**
 * What the long-connection roles (router, connector, pusher) share: Redis key and channel names,
 * the payloads they exchange over Redis pub/sub, and the connector registry. No role talks to
 * another over its own network protocol: everything goes through Redis.
 */
import type { MessageType } from '@danmaku/protocol';
import { channels, deploymentKeys, type Redis } from '@danmaku/store';

/** The processor's "(room, type) advanced to seq N" channels: one per spread bucket of rooms. */
export const advancedChannel = channels.advanced;

export interface RoomAdvanced {
  roomId: string;
  type: MessageType;
  seq: number;
  /**
   * The stored JSON of the messages this advance added, seq order, ending at `seq`, when they are
   * few (ANNOUNCED_MESSAGES_MAX, ANNOUNCED_BYTES_MAX): a listener that holds the stream up to the
   * first one takes them without a read. Absent for bigger batches: read the store.
   */
  messages?: string[];
}

/** Most messages, and bytes of them, an advance carries. */
export const ANNOUNCED_MESSAGES_MAX = 16;
export const ANNOUNCED_BYTES_MAX = 16 * 1024;

/** The channel a pusher uses to reach one connector node. */
export const nodeChannel = channels.node;

/**
 * Pusher -> connector. `n` (notify): these rooms have news, pull them. `b` (broadcast): the
 * pusher read a big room once and hands every node the stored messages (seq order, one type).
 */
export type NodeEvent =
  | { k: 'n'; rooms: string[] }
  | { k: 'b'; roomId: string; type: MessageType; messages: StoredMessage[] };

/** A message as the store keeps it: seq first, then the rest of the API Message. */
export interface StoredMessage {
  seq: number;
  id: string;
  type: MessageType;
  ts: number;
  [field: string]: unknown;
}

/**
 * A broadcast payload built from stored JSON without parsing it: the pusher splices the strings
 * the store gave it, so a big room costs one read and one string per advance.
 */
export function broadcastPayload(roomId: string, type: MessageType, storedJson: readonly string[]): string {
  return `{"k":"b","roomId":${JSON.stringify(roomId)},"type":"${type}","messages":[${storedJson.join(',')}]}`;
}

export function notifyPayload(rooms: string[]): string {
  return JSON.stringify({ k: 'n', rooms } satisfies NodeEvent);
}

/** Parses a node event; null for anything malformed (a bad publish must not stop a connector). */
export function parseNodeEvent(text: string): NodeEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const event = value as Partial<Record<string, unknown>>;
  if (event.k === 'n' && Array.isArray(event.rooms)) return { k: 'n', rooms: event.rooms.filter((r): r is string => typeof r === 'string') };
  if (event.k === 'b' && typeof event.roomId === 'string' && typeof event.type === 'string' && Array.isArray(event.messages)) {
    return value as NodeEvent;
  }
  return null;
}

/** Keys of one deployment ("cluster"): several can share a Redis (tests, staging) without mixing. */
export const pushKeys = {
  /** ZSET node id -> last heartbeat (ms). */
  alive: deploymentKeys.connectors,
  /** HASH node id -> ConnectorInfo JSON. */
  info: deploymentKeys.connectorInfo,
  /** HASH node id -> subscribers of the room on that node; hash-tagged by room. */
  subscribers: deploymentKeys.subscribers,
  /** STRING: the routing config (JSON) the router serves from. */
  routeConfig: deploymentKeys.routeConfig,
};

/** A connector node as it registers itself. */
export interface ConnectorInfo {
  id: string;
  /** What clients connect to (socket.io URL). */
  url: string;
  /** Open sockets: the router orders endpoints by it. */
  sockets: number;
  rooms: number;
  ts: number;
  /** The Bilibili live protocol on this node: WebSocket URL (path /sub), and raw TCP host:port when on. */
  bilibili?: { ws: string; tcp: string | null };
  /** Shutting down (SIGTERM): still alive for the pushers, no longer handed out by routers. */
  draining?: boolean;
}

/** A node that has not beaten for this long is dead: routers stop handing it out, pushers skip it. */
export const NODE_TTL_MS = 5000;
export const HEARTBEAT_MS = 1000;
/** Subscriber counts expire unless refreshed, so a killed node's rooms clean themselves up. */
export const SUBSCRIBERS_TTL_S = 60;

/** Live connectors, least loaded first. */
export async function liveConnectors(redis: Redis, cluster: string, now = Date.now()): Promise<ConnectorInfo[]> {
  const ids = await redis.zrangebyscore(pushKeys.alive(cluster), now - NODE_TTL_MS, '+inf');
  if (ids.length === 0) return [];
  const infos = await redis.hmget(pushKeys.info(cluster), ...ids);
  const out: ConnectorInfo[] = [];
  for (const text of infos) {
    if (!text) continue;
    try {
      out.push(JSON.parse(text) as ConnectorInfo);
    } catch {
      // A bad entry is skipped; its node rewrites it within a heartbeat.
    }
  }
  return out.sort((a, b) => a.sockets - b.sockets || a.id.localeCompare(b.id));
}

/** Heartbeat of one connector (also used by tests to register a fake, unreachable node). */
export async function registerConnector(redis: Redis, cluster: string, info: ConnectorInfo): Promise<void> {
  await redis.multi().zadd(pushKeys.alive(cluster), info.ts, info.id).hset(pushKeys.info(cluster), info.id, JSON.stringify(info)).exec();
}

export async function unregisterConnector(redis: Redis, cluster: string, nodeId: string): Promise<void> {
  await redis.multi().zrem(pushKeys.alive(cluster), nodeId).hdel(pushKeys.info(cluster), nodeId).exec();
}

/**
 * Drops nodes dead for a long time from the registry (the pusher does it every minute). Long after
 * death, so pushers have dropped their room counts by then (they drop a node's counts once they see
 * it dead, and cannot tell a long-gone node from a brand-new one).
 */
export async function pruneConnectors(redis: Redis, cluster: string, now = Date.now()): Promise<string[]> {
  const dead = await redis.zrangebyscore(pushKeys.alive(cluster), '-inf', now - 10 * 60_000);
  if (dead.length > 0) await redis.multi().zrem(pushKeys.alive(cluster), ...dead).hdel(pushKeys.info(cluster), ...dead).exec();
  return dead;
}
