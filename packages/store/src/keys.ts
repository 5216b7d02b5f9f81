/**
 * Every Redis key and pub/sub channel of the system, in one place.
 *
 * Hash tags (`{...}`) decide the Redis Cluster slot. The rule: whatever one Lua script, MULTI or
 * pipeline touches shares one tag. Keys of one (room, type) stream share `{r:ROOM:TYPE}`; room
 * keys share `{r:ROOM}`; a deployment's connector registry shares `{c:CLUSTER}`. Commands that
 * must touch many slots go through `execSpread`, which splits them per node on a cluster.
 */
import type { MessageType } from '@danmaku/protocol';

export const CLUSTER_SLOTS = 16384;

const CRC16_TABLE = (() => {
  const table = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let crc = i << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[i] = crc;
  }
  return table;
})();

/** The Redis Cluster slot of a key or channel (what CLUSTER KEYSLOT answers): CRC16 of the hash tag. */
export function slotOf(key: string): number {
  let hashed = key;
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) hashed = key.slice(open + 1, close);
  }
  const bytes = Buffer.from(hashed, 'utf8');
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (CRC16_TABLE[((crc >> 8) ^ byte) & 0xff] as number);
  return crc % CLUSTER_SLOTS;
}

/** Per (room, type) stream: one slot, so seq allocation + ZADD are one script (DESIGN.md invariant 1). */
export const streamKeys = {
  messages: (roomId: string, type: MessageType) => `dm:{r:${roomId}:${type}}:z`,
  seq: (roomId: string, type: MessageType) => `dm:{r:${roomId}:${type}}:seq`,
  ids: (roomId: string, type: MessageType) => `dm:{r:${roomId}:${type}}:ids`,
  floor: (roomId: string, type: MessageType) => `dm:{r:${roomId}:${type}}:floor`,
};

/** Per room: presence, moderation, likes, the current live. */
export const roomKeys = {
  users: (roomId: string) => `dm:{r:${roomId}}:users`,
  names: (roomId: string) => `dm:{r:${roomId}}:names`,
  /** Banned users of a room: member = user id, score = banned until (ms; +inf = for good). */
  bans: (roomId: string) => `dm:{r:${roomId}}:bans`,
  /** Muted users: member = user id, score = muted until (ms). */
  mutes: (roomId: string) => `dm:{r:${roomId}}:mutes`,
  /** Room settings: slowSec, pinned (notice JSON). */
  settings: (roomId: string) => `dm:{r:${roomId}}:mod`,
  /** Present while a user must wait before the next message (slow mode). */
  slow: (roomId: string, userId: string) => `dm:{r:${roomId}}:slow:${userId}`,
  /** Likes total of the room (fronts flush their aggregated taps with INCRBY). */
  likes: (roomId: string) => `dm:{r:${roomId}}:likes`,
  /** The live of a room. */
  live: (roomId: string) => `dm:{r:${roomId}}:live`,
};

/** Numeric room aliases of the Bilibili protocol (single-key commands only). */
export const aliasKeys = {
  /** alias -> room id. */
  room: (alias: number): string => `dm:alias:${alias}`,
  /** room id -> its alias, beside the room's other keys. */
  alias: (roomId: string): string => `dm:{r:${roomId}}:alias`,
};

/** Anti-abuse and run-time settings shared by every process. */
export const globalKeys = {
  rateUser: (userId: string) => `dm:{rl:u:${userId}}`,
  rateIp: (ip: string) => `dm:{rl:ip:${ip}}`,
  /** Extra sensitive words, editable at run time (SADD dm:words ...). */
  words: 'dm:words',
  /** HASH of degrade switches (field = name, value = JSON). */
  switches: 'dm:switches',
  /** HASH of gears (field = room:type). */
  gears: 'dm:gears',
};

/** Replay Redis: a live's segments share the live's tag. */
export const replayKeys = {
  segment: (liveId: string, seg: number) => `dm:replay:{l:${liveId}}:s:${seg}`,
  segments: (liveId: string) => `dm:replay:{l:${liveId}}:segs`,
};

/**
 * One deployment ("cluster" in config, not Redis Cluster): routers, pushers and connectors that
 * share it. Registry keys share the `{c:NAME}` tag so a heartbeat is one MULTI.
 */
export const deploymentKeys = {
  /** ZSET connector node id -> last heartbeat (ms). */
  connectors: (cluster: string) => `dm:c:{c:${cluster}}:connectors`,
  /** HASH connector node id -> ConnectorInfo JSON. */
  connectorInfo: (cluster: string) => `dm:c:{c:${cluster}}:connectors:info`,
  /** ZSET pusher id -> last heartbeat (ms): the pushers that share rooms. */
  pushers: (cluster: string) => `dm:c:{c:${cluster}}:pushers`,
  /** HASH connector node id -> subscribers of the room on that node; tagged by room. */
  subscribers: (cluster: string, roomId: string) => `dm:c:${cluster}:{p:${roomId}}:nodes`,
  /** STRING: the routing config (JSON) the router serves from. */
  routeConfig: (cluster: string) => `dm:c:{c:${cluster}}:route`,
};

/**
 * Spread tags: hash tags whose slots sit at even steps over the 16384 slots, so channels built on
 * them land on every shard of any cluster that splits slots evenly (a handful of arbitrary tags can
 * leave a shard idle). Found once per process by a tiny deterministic search.
 */
export const SPREAD_BUCKETS = 24;
export const SPREAD_TAGS: readonly string[] = (() => {
  const tags: string[] = [];
  const width = CLUSTER_SLOTS / SPREAD_BUCKETS;
  for (let bucket = 0; bucket < SPREAD_BUCKETS; bucket++) {
    for (let k = 0; ; k++) {
      const tag = `s${bucket}.${k}`;
      const slot = slotOf(tag);
      if (slot >= bucket * width && slot < (bucket + 1) * width) {
        tags.push(tag);
        break;
      }
    }
  }
  return tags;
})();

/** FNV-1a: a stable, cheap string hash (the same in every process and language). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

/** The spread bucket of a room: all its advances travel on one channel, in order. */
export function bucketOf(roomId: string): number {
  return fnv1a(roomId) % SPREAD_BUCKETS;
}

/**
 * Pub/sub channels. On a Redis Cluster they are shard channels (SPUBLISH/SSUBSCRIBE): each lives
 * on the shard of its tag, instead of classic PUBLISH being copied to every node.
 */
export const channels = {
  /** Processor -> pushers: "(room, type) advanced to seq N", one channel per spread bucket. */
  advanced: (bucket: number) => `dm:{${SPREAD_TAGS[bucket] ?? SPREAD_TAGS[0]}}:advanced`,
  /** Every advanced channel (a pusher listens to all of them and keeps the rooms it owns). */
  allAdvanced: (): string[] => SPREAD_TAGS.map((_, i) => channels.advanced(i)),
  /** Pusher -> one connector node. */
  node: (nodeId: string) => `dm:{n:${nodeId}}:node`,
  /** Messages were deleted; caches drop them, connectors emit `deleted`. Low traffic: one channel. */
  deleted: 'dm:{g}:deleted',
  /** A user was banned from or kicked out of a room; connectors close that user's sessions in it. */
  kicked: 'dm:{g}:kicked',
  /** A room's live started or ended; per-process live caches drop that room. */
  live: 'dm:{g}:live',
  /** A live's replay caches are stale (a message was deleted). */
  replay: 'dm:{g}:replay',
};
