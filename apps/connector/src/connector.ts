import type { Server as HttpServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { Server, type Socket } from 'socket.io';
import type { Auth, Principal } from '@danmaku/auth';
import type { ConnectorSettings } from './role.js';
import { shapeSocketIoErrors, toApiError } from '@danmaku/http';
import type { Ingest } from '@danmaku/ingest';
import { ApiError, DEFAULT_POLL_TYPES, decodeCursor, type Cursor } from '@danmaku/model';
import {
  MAX_ROOMS_PER_SOCKET,
  isAck,
  isClientEvent,
  type ClientToServerWire,
  type Ack,
  type Message,
  type Refusal,
  type ServerToClientEvents,
} from '@danmaku/protocol';
import { describeErrors, validJoin, validLeave, validSend } from '@danmaku/protocol/validate';
import { counter, gauge, type Logger } from '@danmaku/observability';
import { nodeChannel, parseNodeEvent, type StoredMessage } from '@danmaku/push';
import { DELETED_CHANNEL, guard, waitReady, type MessagesDeleted, type Redis, type RedisStore } from '@danmaku/store';
import { RoomHub } from './rooms.js';
import { startRegistry, type Registry } from './registry.js';

const socketsGauge = gauge({ name: 'danmaku_connector_sockets', help: 'Open sockets' });
const roomsGauge = gauge({ name: 'danmaku_connector_rooms', help: 'Rooms with at least one socket on this node' });
const joins = counter<'result'>({ name: 'danmaku_connector_joins_total', help: 'Room joins, by result', labelNames: ['result'] });
const sends = counter<'result'>({ name: 'danmaku_connector_sends_total', help: 'Sends over the socket, by result', labelNames: ['result'] });
const drops = counter<'reason'>({ name: 'danmaku_connector_dropped_sockets_total', help: 'Sockets the server disconnected, by reason', labelNames: ['reason'] });
const handshakes = counter<'result'>({ name: 'danmaku_connector_handshakes_total', help: 'Handshakes, by result', labelNames: ['result'] });

interface SocketState {
  principal: Principal | null;
  /** roomId -> socket.io room (group) name. */
  rooms: Map<string, string>;
  /** Rooms whose join is between its first await and its commit: they hold a slot already. */
  joining: Set<string>;
}

/** socket.io typed with the protocol: what clients may emit (unvalidated) and what we emit to them. */
export type ConnectorServer = Server<ClientToServerWire, ServerToClientEvents, Record<string, never>, SocketState>;
type ConnectorSocket = Socket<ClientToServerWire, ServerToClientEvents, Record<string, never>, SocketState>;

export interface ConnectorOptions {
  config: ConnectorSettings;
  logger: Logger;
  store: RedisStore;
  auth: Auth;
  /** The same write path as HTTP sends; null when this node has no bus (sends answer 503). */
  ingest: Ingest | null;
  /** The HTTP server socket.io attaches to (the connector's own, or the standalone front's). */
  server: HttpServer;
  /** What the router hands to clients for this node. */
  publicUrl: string;
  /** A subscriber connection (pub/sub needs one of its own) and a command connection for the registry. */
  subscriber: Redis;
  redis: Redis;
  /** Likes of a room for the periodic `room` event; the likes counter lives elsewhere. */
  roomLikes?: (roomId: string) => Promise<number>;
  nodeId?: string;
  /** How often each room gets a `room` {online, likes} event. */
  roomInfoMs?: number;
}

export interface Connector {
  io: ConnectorServer;
  nodeId: string;
  hub: RoomHub;
  stop(): Promise<void>;
}

function errorBody(err: unknown): Refusal {
  const apiError = err instanceof ApiError ? err : toApiError(err as Error);
  return { ok: false, ...apiError.toBody() };
}

/**
 * The connection layer: socket.io with the token checked in the handshake, room membership,
 * and the push cycle (notify -> pull -> merge -> emit once per room). No business logic beyond
 * the join check (valid room, not banned) and handing sends to the shared write path.
 */
export async function startConnector(options: ConnectorOptions): Promise<Connector> {
  const { config, logger, store, auth, ingest } = options;
  const nodeId = options.nodeId ?? `c-${randomBytes(5).toString('hex')}`;
  const io: ConnectorServer = new Server(options.server, {
    serveClient: false,
    pingInterval: config.socketPingMs,
    pingTimeout: config.socketPingTimeoutMs,
    // Client packets are tiny (join, send); a big one is an error, and socket.io closes that socket.
    maxHttpBufferSize: 16 * 1024,
    perMessageDeflate: false,
    httpCompression: false,
    cors: { origin: true, credentials: false },
    connectTimeout: 10_000,
  });
  // Its own refusals (unknown transport or session, bad upgrade) in the API's error shape.
  shapeSocketIoErrors(options.server);

  let registry: Registry | null = null;
  const hub = new RoomHub({
    io,
    store,
    logger,
    mergeMs: config.pushMergeMs,
    bigMergeMs: config.pushBigMergeMs,
    bigRoomSockets: config.pushBigRoom,
    notifyDelayMs: config.pushNotifyDelayMs,
    sweepMs: config.pushSweepMs,
    onMembership: (roomId, sockets) => registry?.roomChanged(roomId, sockets),
  });
  registry = await startRegistry({ redis: options.redis, cluster: config.cluster, nodeId, url: options.publicUrl, hub, io, logger });

  // Pusher -> this node, and deletions for every node.
  options.subscriber.on('error', () => undefined);
  await waitReady(options.subscriber);
  await options.subscriber.subscribe(nodeChannel(nodeId), DELETED_CHANNEL);
  options.subscriber.on('message', (channel: string, text: string) => {
    if (channel === DELETED_CHANNEL) {
      try {
        const event = JSON.parse(text) as MessagesDeleted;
        if (typeof event.roomId === 'string' && Array.isArray(event.ids)) hub.deleted(event.roomId, event.type, event.ids);
      } catch {
        logger.warn('ignoring a malformed deletion event');
      }
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
  });

  io.use((socket, next) => {
    const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
    let principal: Principal | null = null;
    try {
      if (typeof token === 'string' && token.length > 0) principal = auth.verify(token);
      else if (!config.anonViewers) throw new ApiError(401, 'missing_token', 'This server needs a token: connect with auth: { token }.');
    } catch (err) {
      handshakes.inc({ result: 'refused' });
      const body = errorBody(err);
      const refusal = new Error(body.error.message) as Error & { data?: unknown };
      refusal.data = body.error;
      next(refusal);
      return;
    }
    handshakes.inc({ result: principal ? 'user' : 'anonymous' });
    socket.data.principal = principal;
    socket.data.rooms = new Map();
    socket.data.joining = new Set();
    next();
  });

  /** Bad input drops the socket (never the process); the ack, when there is one, says why. */
  const reject = (socket: ConnectorSocket, ack: unknown, reason: string, err: ApiError): void => {
    // Whatever the event, a refusal is one of its ack's answers.
    if (typeof ack === 'function') (ack as Ack<Refusal>)(errorBody(err));
    drops.inc({ reason });
    socket.disconnect(true);
  };

  io.on('connection', (socket) => {
    const state = socket.data;
    socketsGauge.inc();

    socket.on('join', async (payload, ack) => {
      if (!isAck('join', ack)) return reject(socket, ack, 'bad_input', new ApiError(400, 'invalid_request', '`join` needs an acknowledgement callback.'));
      if (!validJoin(payload)) return reject(socket, ack, 'bad_input', new ApiError(400, 'invalid_request', describeErrors(validJoin.errors)));
      const { roomId } = payload;
      const types = payload.types ?? [...DEFAULT_POLL_TYPES];
      let cursor: Cursor | null = null;
      if (payload.cursor !== undefined) {
        cursor = decodeCursor(payload.cursor);
        if (!cursor) {
          joins.inc({ result: 'invalid_cursor' });
          return ack(errorBody(new ApiError(400, 'invalid_cursor', 'The cursor is not one this server gave out; join without it to start again.')));
        }
      }
      // Counted and reserved before any await: joins sent without waiting for their acks all
      // pass a check that only looks at finished joins.
      const isNew = !state.rooms.has(roomId) && !state.joining.has(roomId);
      if (isNew && state.rooms.size + state.joining.size >= MAX_ROOMS_PER_SOCKET) {
        joins.inc({ result: 'refused' });
        return ack(errorBody(new ApiError(409, 'too_many_rooms', `One connection may sit in at most ${MAX_ROOMS_PER_SOCKET} rooms; leave one first.`)));
      }
      if (isNew) state.joining.add(roomId);
      try {
        // The business module's room-entry check.
        if (state.principal && (await store.isBanned(roomId, state.principal.id))) {
          throw new ApiError(403, 'banned', 'You are banned from this room.');
        }
        const prepared = await hub.prepareJoin(roomId, types, cursor, store.retention);
        if (!socket.connected) return;
        // Synchronous from here: catch-up, then membership, so nothing falls between them.
        if (prepared.catchUp.length > 0) {
          // The store keeps API messages whole; StoredMessage only types what the push path reads.
          socket.emit('messages', { roomId, messages: prepared.catchUp as unknown as Message[], cursor: prepared.cursor, ...(prepared.skipped ? { skipped: true } : {}) });
        }
        prepared.commit();
        // A join again (other types, or after a reconnect of the app): the old membership goes
        // after the new one is in, so the room never empties (and forgets its stream) in between.
        const previous = state.rooms.get(roomId);
        if (previous && previous !== prepared.group) void socket.leave(previous);
        if (previous) hub.release(roomId, previous);
        void socket.join(prepared.group);
        state.rooms.set(roomId, prepared.group);
        joins.inc({ result: 'ok' });
        ack({ ok: true, cursor: prepared.cursor });
        if (state.principal) void store.enter(roomId, state.principal).catch(() => undefined);
      } catch (err) {
        joins.inc({ result: 'refused' });
        ack(errorBody(err));
      } finally {
        if (isNew) state.joining.delete(roomId);
      }
    });

    socket.on('leave', (payload, ack) => {
      if (!validLeave(payload)) return reject(socket, ack, 'bad_input', new ApiError(400, 'invalid_request', describeErrors(validLeave.errors)));
      const group = state.rooms.get(payload.roomId);
      if (group) {
        void socket.leave(group);
        hub.release(payload.roomId, group);
        state.rooms.delete(payload.roomId);
        if (state.principal) void store.leave(payload.roomId, state.principal.id).catch(() => undefined);
      }
      if (isAck('leave', ack)) ack({ ok: true });
    });

    socket.on('send', async (payload, ack) => {
      if (!isAck('send', ack)) return reject(socket, ack, 'bad_input', new ApiError(400, 'invalid_request', '`send` needs an acknowledgement callback.'));
      if (!validSend(payload)) return reject(socket, ack, 'bad_input', new ApiError(400, 'invalid_request', describeErrors(validSend.errors)));
      if (!state.principal) {
        sends.inc({ result: 'refused' });
        return ack(errorBody(new ApiError(401, 'missing_token', 'Sending needs a token: connect with auth: { token }.')));
      }
      const { roomId, ...body } = payload;
      try {
        if (!ingest) throw new ApiError(503, 'send_unavailable', 'This connection cannot take messages right now; send them over HTTP.', 1);
        const accepted = await ingest.accept(roomId, body, state.principal, { ip: socket.handshake.address });
        sends.inc({ result: 'ok' });
        ack({ ok: true, ...accepted });
      } catch (err) {
        sends.inc({ result: 'refused' });
        ack(errorBody(err));
      }
    });

    // Anything else a client emits is not part of the protocol.
    socket.onAny((event: string) => {
      if (!isClientEvent(event)) reject(socket, undefined, 'bad_input', new ApiError(400, 'invalid_request', `Unknown event "${event}".`));
    });

    socket.on('disconnect', () => {
      socketsGauge.dec();
      for (const [roomId, group] of state.rooms) {
        hub.release(roomId, group);
        if (state.principal) void store.leave(roomId, state.principal.id).catch(() => undefined);
      }
      state.rooms.clear();
    });
  });

  // Slow consumers: a socket that cannot keep up is dropped before its buffer hurts the process.
  const slowTimer = setInterval(() => {
    for (const socket of io.sockets.sockets.values()) {
      if (bufferedBytes(socket) > config.socketMaxBufferBytes) {
        drops.inc({ reason: 'slow_consumer' });
        dropNow(socket);
      }
    }
    roomsGauge.set(hub.rooms.size);
  }, 1000);
  slowTimer.unref();

  // Periodic room info, and presence refresh so long-connected viewers stay "online".
  const roomInfoMs = options.roomInfoMs ?? 5000;
  // The fronts aggregate likes into this counter (apps/front likes.ts likesKey).
  const roomLikes = options.roomLikes ?? (async (roomId: string) => Number((await guard(() => store.read.get(`dm:{r:${roomId}}:likes`))) ?? 0));
  const infoTimer = setInterval(() => {
    for (const room of hub.rooms.values()) {
      const roomId = room.id;
      void Promise.all([store.online(roomId), roomLikes(roomId)])
        .then(([online, likes]) => {
          for (const group of room.groups.values()) io.to(group.name).emit('room', { roomId, online, likes });
        })
        .catch(() => undefined);
    }
  }, roomInfoMs);
  infoTimer.unref();
  const presenceTimer = setInterval(() => {
    for (const socket of io.sockets.sockets.values()) {
      const state = socket.data;
      if (!state.principal) continue;
      for (const roomId of state.rooms.keys()) void store.enter(roomId, state.principal).catch(() => undefined);
    }
  }, Math.max(1000, Math.floor(config.onlineTtlMs / 3)));
  presenceTimer.unref();

  logger.info({ nodeId, url: options.publicUrl }, 'connector ready');
  return {
    io,
    nodeId,
    hub,
    async stop() {
      clearInterval(slowTimer);
      clearInterval(infoTimer);
      clearInterval(presenceTimer);
      await registry?.stop();
      hub.stop();
      await options.subscriber.unsubscribe().catch(() => undefined);
      io.disconnectSockets(true);
      // io.close() would also close the HTTP server, which belongs to whoever passed it in.
      io.engine.close();
    },
  };
}

/**
 * Closes a socket without flushing: a plain disconnect waits for the buffer to drain, which a
 * consumer that does not read never lets happen. The TCP socket goes at once, and its buffers with it.
 */
function dropNow(socket: Socket): void {
  const tcp = (socket.conn as unknown as { transport?: { socket?: { _socket?: { destroy(): void } } } }).transport?.socket?._socket;
  socket.conn.close(true);
  tcp?.destroy();
}

/** Bytes queued for a socket: engine.io's write buffer plus the WebSocket's unsent bytes. */
function bufferedBytes(socket: Socket): number {
  const conn = socket.conn as unknown as { writeBuffer?: unknown[]; transport?: { socket?: { bufferedAmount?: number; _socket?: { writableLength?: number } } } };
  const ws = conn.transport?.socket;
  const wsBytes = ws?._socket?.writableLength ?? ws?.bufferedAmount ?? 0;
  // Packets still in engine.io's buffer (polling, or a paused transport): count ~1 KB each.
  return wsBytes + (conn.writeBuffer?.length ?? 0) * 1024;
}
