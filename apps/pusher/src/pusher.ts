import type { MessageType } from '@danmaku/protocol';
import { counter, gauge, type Logger } from '@danmaku/observability';
import { randomBytes } from 'node:crypto';
import {
  NODE_TTL_MS,
  broadcastPayload,
  nodeChannel,
  notifyPayload,
  pruneConnectors,
  pushKeys,
  type RoomAdvanced,
} from '@danmaku/push';
import { channels, deploymentKeys, execSpread, fnv1a, guard, type Command, type Redis, type RedisStore, type Signals } from '@danmaku/store';

export type PushMode = 'notify' | 'broadcast';

const pushes = counter<'mode'>({ name: 'danmaku_pusher_pushes_total', help: 'Room advances pushed to connectors, by mode', labelNames: ['mode'] });
const published = counter<'kind'>({ name: 'danmaku_pusher_published_total', help: 'Node channel publishes, by kind', labelNames: ['kind'] });
const broadcastSources = counter<'source'>({
  name: 'danmaku_pusher_broadcast_sources_total',
  help: 'Big-room broadcasts, by where their messages came from: the advance itself (carried) or a read of the store',
  labelNames: ['source'],
});
const carriedBroadcasts = broadcastSources.labels('carried');
const readBroadcasts = broadcastSources.labels('store');
const switches = counter<'to'>({ name: 'danmaku_pusher_mode_switches_total', help: 'Rooms switching push mode', labelNames: ['to'] });
const roomsByMode = gauge<'mode'>({ name: 'danmaku_pusher_rooms', help: 'Rooms seen in the last minutes, by push mode', labelNames: ['mode'] });
const errors = counter({ name: 'danmaku_pusher_errors_total', help: 'Pushes that failed (connectors catch up on their timer)' });
const ownedRooms = gauge<'pusher'>({
  name: 'danmaku_pusher_owned_rooms',
  help: 'Rooms this pusher pushed in the last minute (rendezvous hashing gives each room to exactly one live pusher)',
  labelNames: ['pusher'],
});
const othersRooms = counter({ name: 'danmaku_pusher_foreign_advances_total', help: 'Advances ignored because another live pusher owns the room' });
const livePushers = gauge({ name: 'danmaku_pusher_live_pushers', help: 'Live pushers this pusher sees (itself included)' });

/** A pusher that has not beaten for this long is dead: its rooms go to the survivors. */
export const PUSHER_TTL_MS = 2500;
export const PUSHER_HEARTBEAT_MS = 500;

/**
 * Rendezvous (highest random weight) hashing: each room goes to the live pusher with the highest
 * hash of (pusher, room). When a pusher joins or dies only its own share of rooms moves.
 */
export function ownerOf(roomId: string, pushers: readonly string[]): string | null {
  let best: string | null = null;
  let bestWeight = -1;
  for (const id of pushers) {
    const weight = fnv1a(`${id}|${roomId}`);
    if (weight > bestWeight || (weight === bestWeight && best !== null && id < best)) {
      best = id;
      bestWeight = weight;
    }
  }
  return best;
}

/** How far back the first broadcast of a stream reads (connectors that are further behind pull). */
const FIRST_BROADCAST_WINDOW = 200;
const BROADCAST_READ_LIMIT = 500;
/** A room not advanced for this long is forgotten (its mode starts again from notify). */
const ROOM_IDLE_MS = 5 * 60_000;
/** How long a room's subscriber counts are reused (joins and leaves show within this). */
const SUBSCRIBERS_CACHE_MS = 200;

export interface PusherOptions {
  /** Commands (HGETALL, the pusher registry). */
  redis: Redis;
  /** Room signals; default: the store's. */
  signals?: Signals;
  /** This pusher's id in the registry (default: random). */
  id?: string;
  store: RedisStore;
  cluster: string;
  /** Subscribers at which a room switches to broadcast... */
  bigRoom: number;
  /** ...and at or below which it goes back to notify. */
  smallRoom: number;
  /** Wait before reading a big room, so close advances share one read (default 5 ms). */
  readDelayMs?: number;
  logger: Logger;
}

interface RoomState {
  mode: PushMode;
  subscribers: number;
  seenAt: number;
}

interface StreamState {
  lastSeq: number | null;
  target: number;
  nodes: string[];
  reading: boolean;
  again: boolean;
}

export interface Pusher {
  id: string;
  modeOf(roomId: string): PushMode;
  /** Rooms this pusher pushed since it started (or since the last reset). */
  pushedRooms(): Set<string>;
  /** The live pushers as this one sees them. */
  livePushers(): string[];
  stop(): Promise<void>;
}

/**
 * The push layer: knows which connector nodes hold which rooms (counts kept by the connectors
 * in Redis) and tells them when a room advanced. Small room: a notify per node, the node pulls.
 * Big room: one read here, the payload broadcast to every node that holds the room.
 */
export async function startPusher(options: PusherOptions): Promise<Pusher> {
  const { redis, store, cluster, logger } = options;
  const signals = options.signals ?? store.signals;
  const id = options.id ?? `p-${randomBytes(4).toString('hex')}`;
  const readDelayMs = options.readDelayMs ?? 5;
  const pushed = new Map<string, number>();

  // The pusher registry: a heartbeat per pusher; each sees the same live set and so the same owners.
  let live: string[] = [id];
  const beat = async (): Promise<void> => {
    const now = Date.now();
    await guard(() => redis.zadd(deploymentKeys.pushers(cluster), now, id));
    const ids = await guard(() => redis.zrangebyscore(deploymentKeys.pushers(cluster), now - PUSHER_TTL_MS, '+inf'));
    if (!ids.includes(id)) ids.push(id);
    ids.sort();
    if (ids.join() !== live.join()) logger.info({ pushers: ids }, 'live pushers changed; rooms rebalanced');
    live = ids;
    livePushers.set(ids.length);
  };
  await beat();
  const beatTimer = setInterval(() => void beat().catch((err: unknown) => logger.warn({ err }, 'pusher heartbeat failed')), PUSHER_HEARTBEAT_MS);
  beatTimer.unref();
  const rooms = new Map<string, RoomState>();
  const streams = new Map<string, StreamState>();
  /** Last heartbeat of every registered node. */
  let beats = new Map<string, number>();

  const refreshAlive = async (): Promise<void> => {
    const flat = await redis.zrange(pushKeys.alive(cluster), 0, -1, 'WITHSCORES');
    const next = new Map<string, number>();
    for (let i = 0; i + 1 < flat.length; i += 2) next.set(flat[i] as string, Number(flat[i + 1]));
    beats = next;
  };
  await refreshAlive();
  const aliveTimer = setInterval(() => void refreshAlive().catch(() => undefined), 500);
  aliveTimer.unref();
  const pruneTimer = setInterval(() => void pruneConnectors(redis, cluster).catch(() => undefined), 60_000);
  pruneTimer.unref();

  /**
   * A node that stopped beating is dead: skipped, and its counts dropped. A node missing from
   * the snapshot may have registered since the last refresh: it is pushed to (a publish nobody
   * hears costs nothing), never dropped.
   */
  const isDead = (nodeId: string, now: number): boolean => {
    const beat = beats.get(nodeId);
    return beat !== undefined && beat < now - NODE_TTL_MS;
  };

  const housekeeping = setInterval(() => {
    const now = Date.now();
    const counts = { notify: 0, broadcast: 0 };
    for (const [roomId, state] of rooms) {
      if (now - state.seenAt > ROOM_IDLE_MS) {
        rooms.delete(roomId);
        continue;
      }
      counts[state.mode]++;
    }
    for (const [roomId, cached] of countsCache) if (now - cached.at > 10_000) countsCache.delete(roomId);
    for (const key of streams.keys()) if (!rooms.has(key.slice(0, key.lastIndexOf(':')))) streams.delete(key);
    let owned = 0;
    for (const [roomId, at] of pushed) {
      if (now - at > 60_000) pushed.delete(roomId);
      else owned++;
    }
    ownedRooms.set({ pusher: id }, owned);
    roomsByMode.set({ mode: 'notify' }, counts.notify);
    roomsByMode.set({ mode: 'broadcast' }, counts.broadcast);
  }, 1000);
  housekeeping.unref();

  /**
   * Live nodes holding each room, with their counts; fields of dead nodes are dropped. A hot room
   * advances many times a second, so its counts are reused for SUBSCRIBERS_CACHE_MS.
   */
  const countsCache = new Map<string, { at: number; nodes: Map<string, number> }>();
  const subscribersOf = async (allRoomIds: string[]): Promise<Map<string, Map<string, number>>> => {
    const out = new Map<string, Map<string, number>>();
    const now = Date.now();
    const roomIds: string[] = [];
    for (const roomId of allRoomIds) {
      const cached = countsCache.get(roomId);
      if (cached && now - cached.at < SUBSCRIBERS_CACHE_MS) out.set(roomId, cached.nodes);
      else roomIds.push(roomId);
    }
    if (roomIds.length === 0) return out;
    // One slot per room: per node on a cluster.
    const replies = await execSpread(redis, roomIds.map((roomId): Command => ['hgetall', pushKeys.subscribers(cluster, roomId)]));
    const prune: Command[] = [];
    roomIds.forEach((roomId, i) => {
      const [err, value] = replies[i] ?? [null, {}];
      if (err) throw err;
      const nodes = new Map<string, number>();
      for (const [nodeId, count] of Object.entries(value as Record<string, string>)) {
        if (!isDead(nodeId, now)) nodes.set(nodeId, Number(count));
        else {
          prune.push(['hdel', pushKeys.subscribers(cluster, roomId), nodeId]);
        }
      }
      out.set(roomId, nodes);
      countsCache.set(roomId, { at: now, nodes });
    });
    if (prune.length > 0) void execSpread(redis, prune).catch(() => undefined);
    return out;
  };

  const decide = (roomId: string, subscribers: number): PushMode => {
    let state = rooms.get(roomId);
    if (!state) {
      state = { mode: 'notify', subscribers, seenAt: Date.now() };
      rooms.set(roomId, state);
    }
    state.subscribers = subscribers;
    state.seenAt = Date.now();
    const next: PushMode =
      state.mode === 'notify' ? (subscribers >= options.bigRoom ? 'broadcast' : 'notify') : subscribers <= options.smallRoom ? 'notify' : 'broadcast';
    if (next !== state.mode) {
      switches.inc({ to: next });
      logger.info({ roomId, subscribers, mode: next }, 'room push mode switched');
      state.mode = next;
      if (next === 'notify') for (const key of [...streams.keys()]) if (key.startsWith(`${roomId}:`)) streams.delete(key);
    }
    return next;
  };

  /** One read per advance burst of a stream, whatever the number of nodes; single flight. */
  const broadcastStream = async (roomId: string, type: MessageType, seq: number, nodes: string[], carried?: readonly string[]): Promise<void> => {
    const key = `${roomId}:${type}`;
    let state = streams.get(key);
    if (!state) {
      state = { lastSeq: null, target: 0, nodes, reading: false, again: false };
      streams.set(key, state);
    }
    state.nodes = nodes;
    state.target = Math.max(state.target, seq);
    if (state.reading) {
      state.again = true;
      return;
    }
    // The advance carries exactly what follows what was broadcast last: sent as it is, with no
    // read and no wait. Each read is a Redis round trip, and at a few messages a second per room
    // (most big rooms) nearly every advance comes this way.
    if (carried && carried.length > 0 && state.lastSeq !== null && state.lastSeq === seq - carried.length) {
      state.lastSeq = seq;
      carriedBroadcasts.inc();
      const payload = broadcastPayload(roomId, type, carried);
      await signals.publishMany(state.nodes.map((nodeId) => [nodeChannel(nodeId), payload] as const));
      published.inc({ kind: 'broadcast' }, state.nodes.length);
      return;
    }
    state.reading = true;
    try {
      // Advances a few ms apart (one per processor batch) share one read and one payload.
      await new Promise((resolve) => setTimeout(resolve, readDelayMs));
      for (let rounds = 0; rounds < 20; rounds++) {
        state.again = false;
        const from = state.lastSeq ?? Math.max(0, state.target - FIRST_BROADCAST_WINDOW);
        if (from >= state.target) break;
        const result = await store.readSince(roomId, type, from, BROADCAST_READ_LIMIT);
        readBroadcasts.inc();
        if (result.messages.length > 0) {
          const payload = broadcastPayload(roomId, type, result.messages);
          await signals.publishMany(state.nodes.map((nodeId) => [nodeChannel(nodeId), payload] as const));
          published.inc({ kind: 'broadcast' }, state.nodes.length);
        }
        state.lastSeq = result.cursorSeq;
        if (!state.again && state.lastSeq >= state.target) break;
      }
    } finally {
      state.reading = false;
    }
  };

  const onAdvanced = async (events: RoomAdvanced[]): Promise<void> => {
    const byRoom = new Map<string, RoomAdvanced[]>();
    const now = Date.now();
    for (const e of events) {
      if (typeof e?.roomId !== 'string' || typeof e.seq !== 'number') continue;
      if (ownerOf(e.roomId, live) !== id) {
        othersRooms.inc();
        continue;
      }
      if (!pushed.has(e.roomId)) {
        pushed.set(e.roomId, now);
        ownedRooms.set({ pusher: id }, pushed.size);
      } else pushed.set(e.roomId, now);
      const list = byRoom.get(e.roomId);
      if (list) list.push(e);
      else byRoom.set(e.roomId, [e]);
    }
    if (byRoom.size === 0) return;
    const subscribers = await subscribersOf([...byRoom.keys()]);
    const notifies = new Map<string, string[]>();
    const work: Promise<void>[] = [];
    for (const [roomId, advanced] of byRoom) {
      const nodes = subscribers.get(roomId) ?? new Map<string, number>();
      let total = 0;
      for (const count of nodes.values()) total += count;
      const mode = decide(roomId, total);
      if (nodes.size === 0) continue;
      pushes.inc({ mode });
      if (mode === 'notify') {
        for (const nodeId of nodes.keys()) {
          const list = notifies.get(nodeId);
          if (list) list.push(roomId);
          else notifies.set(nodeId, [roomId]);
        }
      } else {
        for (const e of advanced) work.push(broadcastStream(roomId, e.type, e.seq, [...nodes.keys()], e.messages));
      }
    }
    if (notifies.size > 0) {
      work.push(signals.publishMany([...notifies].map(([nodeId, roomIds]) => [nodeChannel(nodeId), notifyPayload(roomIds)] as const)));
      published.inc({ kind: 'notify' }, notifies.size);
    }
    await Promise.all(work);
  };

  const subscription = await signals.subscribe(channels.allAdvanced(), (_channel: string, text: string) => {
    let events: RoomAdvanced[];
    try {
      events = JSON.parse(text) as RoomAdvanced[];
      if (!Array.isArray(events)) throw new Error('not an array');
    } catch {
      logger.warn('ignoring a malformed advanced event');
      return;
    }
    onAdvanced(events).catch((err: unknown) => {
      errors.inc();
      logger.warn({ err }, 'push failed; connectors catch up on their timer');
    });
  });
  logger.info({ cluster, id, pushers: live, bigRoom: options.bigRoom, smallRoom: options.smallRoom }, 'pusher ready');

  return {
    id,
    modeOf: (roomId) => rooms.get(roomId)?.mode ?? 'notify',
    pushedRooms: () => new Set(pushed.keys()),
    livePushers: () => [...live],
    async stop() {
      clearInterval(aliveTimer);
      clearInterval(pruneTimer);
      clearInterval(housekeeping);
      clearInterval(beatTimer);
      await subscription.close();
      // Leave the registry at once, so the others take this pusher's rooms without waiting for the TTL.
      await redis.zrem(deploymentKeys.pushers(cluster), id).catch(() => undefined);
    },
  };
}
