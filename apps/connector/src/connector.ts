import type { Server as HttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import type { Auth } from '@danmaku/auth';
import { LIVE_CHANNEL, liveKey } from '@danmaku/lives';
import type { Logger } from '@danmaku/observability';
import type { SendPipeline as Ingest } from '@danmaku/send';
import { nodeChannel, parseNodeEvent, type StoredMessage } from '@danmaku/push';
import { DELETED_CHANNEL, KICKED_CHANNEL, guard, parseMessagesDeleted, type Redis, type RedisStore, type RoomKick } from '@danmaku/store';
import { BILI_WS_PATH, BilibiliTransport } from './bilibili.js';
import { ConnectorCore } from './core.js';
import { startRegistry, type Registry } from './registry.js';
import type { RoomHub } from './rooms.js';
import type { ConnectorSettings } from './settings.js';
import { SocketIoTransport, type ConnectorServer } from './socketio.js';

export type { ConnectorServer } from './socketio.js';

export interface ConnectorOptions {
  config: ConnectorSettings;
  logger: Logger;
  store: RedisStore;
  auth: Auth;
  /** The same send pipeline as HTTP sends; null when this node has no bus (sends answer 503). */
  ingest: Ingest | null;
  /** The HTTP server socket.io and the Bilibili WebSocket (/sub) attach to (the connector's own, or the standalone front's). */
  server: HttpServer;
  /** What the router hands to clients for this node. */
  publicUrl: string;
  /** The command connection for the registry (room signals use the store's). */
  redis: Redis;
  /** Likes of a room for the periodic `room` event; the likes counter lives elsewhere. */
  roomLikes?: (roomId: string) => Promise<number>;
  nodeId?: string;
  /** How often each room gets a `room` {online, likes} event. */
  roomInfoMs?: number;
  /** Share of comments a big room's packets keep (the bigRoomSampleRatio switch); default all. */
  sampleRatio?: () => number;
}

export interface Connector {
  io: ConnectorServer;
  nodeId: string;
  hub: RoomHub;
  /** The Bilibili-protocol endpoints of this node: WebSocket URL, and TCP port (null = off). */
  bilibili: { ws: string; tcpPort: number | null };
  /** SIGTERM: routers stop handing this node out, and its connections move away over `windowMs`. */
  drain(windowMs: number): Promise<void>;
  stop(): Promise<void>;
}

/** The WebSocket URL of a connector's Bilibili endpoint, from its public (socket.io) URL. */
export function biliWsUrl(publicUrl: string): string {
  const url = new URL(publicUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = BILI_WS_PATH;
  url.search = '';
  return url.toString();
}

/**
 * The connection layer: one core (rooms, the push cycle notify -> pull -> merge -> deliver once
 * per room, presence, room info, slow consumers) behind two transports, socket.io and the
 * Bilibili live protocol. No business logic beyond the join check (valid room, not banned) and
 * handing sends to the shared write path.
 */
export async function startConnector(options: ConnectorOptions): Promise<Connector> {
  const { config, logger, store, auth, ingest } = options;
  const nodeId = options.nodeId ?? `c-${randomBytes(5).toString('hex')}`;

  let registry: Registry | null = null;
  const core = new ConnectorCore({
    config,
    logger,
    store,
    onMembership: (roomId, sockets) => registry?.roomChanged(roomId, sockets),
    ...(options.roomLikes ? { roomLikes: options.roomLikes } : {}),
    roomLive: async (roomId) => {
      const hash = await guard(() => store.read.hgetall(liveKey(roomId)));
      return hash.liveId && hash.startedAt ? { liveId: hash.liveId, startedAt: Number(hash.startedAt) } : null;
    },
    ...(options.roomInfoMs ? { roomInfoMs: options.roomInfoMs } : {}),
    ...(options.sampleRatio ? { sampleRatio: options.sampleRatio } : {}),
  });
  const hub = core.hub;
  const socketIo = new SocketIoTransport({ config, auth, ingest, server: options.server, core });
  core.addTransport(socketIo);
  const bilibili = await BilibiliTransport.start({ core, auth, logger, redis: store.read, server: options.server, host: config.host, tcpPort: config.biliTcpPort });
  core.addTransport(bilibili);
  const biliEndpoints = { ws: biliWsUrl(options.publicUrl), tcpPort: bilibili.tcpPort };
  const tcpHost = new URL(options.publicUrl).hostname;
  registry = await startRegistry({
    redis: options.redis,
    cluster: config.cluster,
    nodeId,
    url: options.publicUrl,
    bilibili: { ws: biliEndpoints.ws, tcp: biliEndpoints.tcpPort ? `${tcpHost}:${biliEndpoints.tcpPort}` : null },
    hub,
    sessions: () => core.sessionCount,
    logger,
  });

  // Pusher -> this node; deletions and live start/end for every node. After a lost connection or
  // a Redis failover the subscription comes back by itself, and every room pulls to catch up.
  const onSignal = (channel: string, text: string): void => {
    if (channel === LIVE_CHANNEL) {
      core.liveChanged(text);
      return;
    }
    if (channel === KICKED_CHANNEL) {
      try {
        const kick = JSON.parse(text) as RoomKick;
        if (typeof kick.roomId === 'string' && typeof kick.userId === 'string') core.kick(kick);
      } catch {
        logger.warn('ignoring a malformed kick event');
      }
      return;
    }
    if (channel === DELETED_CHANNEL) {
      const event = parseMessagesDeleted(text);
      if (event) hub.deleted(event.roomId, event.type, event.ids);
      else logger.warn('ignoring a malformed deletion event');
      return;
    }
    const event = parseNodeEvent(text);
    if (!event) {
      logger.warn('ignoring a malformed pusher event');
    } else if (event.k === 'n') {
      for (const roomId of event.rooms) hub.notify(roomId);
    } else {
      hub.broadcast(event.roomId, event.type, event.messages as StoredMessage[]);
    }
  };
  const subscription = await store.signals.subscribe([nodeChannel(nodeId), DELETED_CHANNEL, KICKED_CHANNEL, LIVE_CHANNEL], onSignal, () => {
    logger.info('signals resubscribed; pulling every room');
    for (const roomId of hub.rooms.keys()) hub.notify(roomId);
  });

  logger.info({ nodeId, url: options.publicUrl, bilibili: biliEndpoints }, 'connector ready');
  return {
    io: socketIo.io,
    nodeId,
    hub,
    bilibili: biliEndpoints,
    async drain(windowMs) {
      core.draining = true;
      await registry?.drain();
      await core.drain(windowMs);
    },
    async stop() {
      await registry?.stop();
      await subscription.close();
      await core.stop();
    },
  };
}
