import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import type { Auth, Principal } from '@danmaku/auth';
import { shapeSocketIoErrors, socketCors, toApiError } from '@danmaku/http';
import type { SendPipeline as Ingest } from '@danmaku/send';
import { ApiError } from '@danmaku/model';
import {
  type Ack,
  type ClientToServerWire,
  type Cursor,
  decodeCursor,
  DEFAULT_POLL_TYPES,
  isAck,
  type KickedPacket,
  type Message,
  type Refusal,
  type ServerToClientEvents,
} from '@danmaku/protocol';
import { describeErrors, validJoin, validLeave, validSend } from '@danmaku/protocol/validate';
import { counter, gauge } from '@danmaku/observability';
import type { StoredMessage } from '@danmaku/push';
import { drops, type ConnectorCore } from './core.js';
import { eventFrame, writeEvent } from './fanout.js';
import { queuedPackets, releaseRequest, webSocketOf } from './internals/engine-io.js';
import type { ConnectorSettings } from './settings.js';
import type { RoomEvent, Session, Transport } from './transport.js';

const socketsGauge = gauge({ name: 'danmaku_connector_sockets', help: 'Open socket.io sockets' });
const sends = counter<'result'>({ name: 'danmaku_connector_sends_total', help: 'Sends over the socket, by result', labelNames: ['result'] });
const handshakes = counter<'result'>({ name: 'danmaku_connector_handshakes_total', help: 'Handshakes, by result', labelNames: ['result'] });

const EMPTY: Record<string, never> = Object.freeze({});

interface SocketState {
  session: SocketIoSession;
}

/** socket.io typed with the protocol: what clients may emit (unvalidated) and what we emit to them. */
export type ConnectorServer = Server<ClientToServerWire, ServerToClientEvents, Record<string, never>, SocketState>;
type ConnectorSocket = Socket<ClientToServerWire, ServerToClientEvents, Record<string, never>, SocketState>;

function errorBody(err: unknown): Refusal {
  const apiError = err instanceof ApiError ? err : toApiError(err as Error);
  return { ok: false, ...apiError.toBody() };
}

export interface SocketIoOptions {
  config: ConnectorSettings;
  auth: Auth;
  /** The same send pipeline as HTTP sends; null when this node has no bus (sends answer 503). */
  ingest: Ingest | null;
  server: HttpServer;
  core: ConnectorCore;
}

/**
 * Which sessions sit in which group. socket.io's own rooms would do, but they cost a Set per
 * socket in the adapter beside the one per room, and delivery goes around socket.io anyway.
 */
class Groups {
  readonly byGroup = new Map<string, Set<SocketIoSession>>();
  add(group: string, session: SocketIoSession): void {
    let members = this.byGroup.get(group);
    if (!members) this.byGroup.set(group, (members = new Set()));
    members.add(session);
  }
  remove(group: string, session: SocketIoSession): void {
    const members = this.byGroup.get(group);
    if (!members) return;
    members.delete(session);
    if (members.size === 0) this.byGroup.delete(group);
  }
}

/** A socket.io socket as the core sees it. */
class SocketIoSession implements Session {
  readonly transport = 'socket.io';
  readonly rooms = new Map<string, string>();
  constructor(
    readonly socket: ConnectorSocket,
    readonly principal: Principal | null,
    private readonly groups: Groups,
  ) {}
  get ip(): string {
    return this.socket.handshake.address;
  }
  isOpen(): boolean {
    return this.socket.connected;
  }
  bufferedBytes(): number {
    return bufferedBytes(this.socket);
  }
  drop(): void {
    dropNow(this.socket);
  }
  enterGroup(group: string): void {
    this.groups.add(group, this);
  }
  leaveGroup(group: string): void {
    this.groups.remove(group, this);
  }
  catchUp(roomId: string, messages: StoredMessage[], cursor: string, skipped: boolean): void {
    // The store keeps API messages whole; StoredMessage only types what the push path reads.
    this.socket.emit('messages', { roomId, messages: messages as unknown as Message[], cursor, ...(skipped ? { skipped: true } : {}) });
  }
  /** `move` first, in the same flush as the close: the SDK reconnects elsewhere, with its cursor. */
  move(): void {
    this.socket.emit('move', { reason: 'draining' });
    this.socket.disconnect(true);
  }
  /** The socket stays: it may sit in other rooms, and the SDK closes it when it hears this. */
  kicked(packet: KickedPacket): void {
    this.socket.emit('kicked', packet);
  }
}

/**
 * socket.io, this project's own protocol (@danmaku/protocol): the token checked in the
 * handshake; join, leave and send events; `messages`, `room` and `deleted` events out.
 */
export class SocketIoTransport implements Transport {
  readonly name = 'socket.io';
  readonly io: ConnectorServer;
  private readonly groups = new Groups();

  constructor(private readonly options: SocketIoOptions) {
    const { config, auth, core } = options;
    // Shared by every socket (`this` is the socket): a closure per socket would cost a function and a context each.
    function onDisconnect(this: ConnectorSocket): void {
      socketsGauge.dec();
      core.closed(this.data.session);
    }
    const io: ConnectorServer = new Server(options.server, {
      serveClient: false,
      pingInterval: config.socketPingMs,
      pingTimeout: config.socketPingTimeoutMs,
      // Client packets are tiny (join, send); a big one is an error, and socket.io closes that socket.
      maxHttpBufferSize: 16 * 1024,
      perMessageDeflate: false,
      httpCompression: false,
      cors: socketCors(config.corsOrigins),
      connectTimeout: 10_000,
    });
    this.io = io;
    // Its own refusals (unknown transport or session, bad upgrade) in the API's error shape.
    shapeSocketIoErrors(io.engine);

    io.use((socket, next) => {
      const token: unknown = (socket.handshake.auth as Record<string, unknown> | undefined)?.token;
      let principal: Principal | null = null;
      try {
        if (core.draining) throw new ApiError(503, 'draining', 'This connector is shutting down; connect to another one (ask GET /v1/route).', 1);
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
      socket.data.session = new SocketIoSession(socket, principal, this.groups);
      next();
    });

    io.on('connection', (socket) => {
      // The handshake (address, headers, query) is built by now; the upgrade request itself, with
      // its parser leftovers, would otherwise live as long as the connection.
      releaseRequest(socket);
      // Nothing reads the upgrade's headers, query, URL, time or auth (the token: a few hundred
      // bytes) after the middleware; per socket they are a dozen strings. One shared empty object
      // stands for each.
      const handshake = socket.handshake;
      handshake.headers = EMPTY as typeof handshake.headers;
      handshake.query = EMPTY as typeof handshake.query;
      handshake.auth = EMPTY;
      handshake.url = '';
      handshake.time = '';
      const session = socket.data.session;
      core.opened(session);
      socketsGauge.inc();
      // Every event a client emits passes the socket's middleware array, which each socket has
      // already: handling join, leave and send there (and refusing anything else) takes one
      // function per socket where listeners would add four, and an events table, to each socket.
      // The middleware never calls next(), so nothing is emitted on the socket.
      socket.use((packet) => this.onEvent(session, packet));
      socket.on('disconnect', onDisconnect);
    });
  }

  /** One event from a client: `[name, payload?, ack?]` as socket.io received it. */
  private onEvent(session: SocketIoSession, packet: unknown[]): void {
    const [event, payload, ack] = packet;
    switch (event) {
      case 'join':
        void this.join(session, payload, ack);
        return;
      case 'leave':
        if (!validLeave(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describeErrors(validLeave.errors)));
        this.options.core.leave(session, payload.roomId);
        if (isAck('leave', ack)) ack({ ok: true });
        return;
      case 'send':
        void this.send(session, payload, ack);
        return;
      default:
        this.reject(session, undefined, new ApiError(400, 'invalid_request', `Unknown event "${String(event)}".`));
    }
  }

  get sessionCount(): number {
    return this.io.engine.clientsCount;
  }

  /** Bad input drops the socket (never the process); the ack, when there is one, says why. */
  private reject(session: SocketIoSession, ack: unknown, err: ApiError): void {
    // Whatever the event, a refusal is one of its ack's answers.
    if (typeof ack === 'function') (ack as Ack<Refusal>)(errorBody(err));
    drops.inc({ reason: 'bad_input', transport: this.name });
    session.socket.disconnect(true);
  }

  private async join(session: SocketIoSession, payload: unknown, ack: unknown): Promise<void> {
    if (!isAck('join', ack)) return this.reject(session, ack, new ApiError(400, 'invalid_request', '`join` needs an acknowledgement callback.'));
    if (!validJoin(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describeErrors(validJoin.errors)));
    const types = payload.types ?? [...DEFAULT_POLL_TYPES];
    let cursor: Cursor | null = null;
    if (payload.cursor !== undefined) {
      cursor = decodeCursor(payload.cursor);
      if (!cursor) return ack(errorBody(new ApiError(400, 'invalid_cursor', 'The cursor is not one this server gave out; join without it to start again.')));
    }
    try {
      const joined = await this.options.core.join(session, payload.roomId, types, cursor);
      if (joined !== null) ack({ ok: true, cursor: joined.cursor, ...(joined.skipped ? { skipped: true as const } : {}) });
    } catch (err) {
      ack(errorBody(err));
    }
  }

  private async send(session: SocketIoSession, payload: unknown, ack: unknown): Promise<void> {
    if (!isAck('send', ack)) return this.reject(session, ack, new ApiError(400, 'invalid_request', '`send` needs an acknowledgement callback.'));
    if (!validSend(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describeErrors(validSend.errors)));
    if (!session.principal) {
      sends.inc({ result: 'refused' });
      return ack(errorBody(new ApiError(401, 'missing_token', 'Sending needs a token: connect with auth: { token }.')));
    }
    const { roomId, ...body } = payload;
    try {
      if (!this.options.ingest) throw new ApiError(503, 'send_unavailable', 'This connection cannot take messages right now; send them over HTTP.', 1);
      const accepted = await this.options.ingest.accept(roomId, body, session.principal, { ip: session.ip });
      sends.inc({ result: 'ok' });
      ack({ ok: true, ...accepted });
    } catch (err) {
      sends.inc({ result: 'refused' });
      ack(errorBody(err));
    }
  }

  deliver(group: string, event: RoomEvent): number {
    const members = this.groups.byGroup.get(group);
    if (!members || members.size === 0) return 0;
    let name: 'messages' | 'deleted' | 'room';
    let payload: unknown;
    switch (event.kind) {
      case 'messages':
        name = 'messages';
        payload = { roomId: event.roomId, messages: event.messages, cursor: event.cursor, ...(event.skipped ? { skipped: true } : {}) };
        break;
      case 'deleted':
        name = 'deleted';
        payload = { roomId: event.roomId, ids: event.ids };
        break;
      case 'room':
        name = 'room';
        payload = { roomId: event.roomId, online: event.online, likes: event.likes };
        break;
      default:
        // Live start/end reaches socket.io clients through the room's state (GET /v1/rooms/:roomId).
        return 0;
    }
    // One encoding per group, one write per socket.
    const frame = eventFrame(name, payload);
    let reached = 0;
    for (const session of members) {
      if (!session.socket.connected) continue;
      writeEvent(session.socket, frame, name, payload);
      reached++;
    }
    return event.kind === 'messages' ? reached : 0;
  }

  async close(): Promise<void> {
    this.io.disconnectSockets(true);
    // io.close() would also close the HTTP server, which belongs to whoever passed it in.
    this.io.engine.close();
  }
}

/**
 * Closes a socket without flushing: a plain disconnect waits for the buffer to drain, which a
 * consumer that does not read never lets happen. The WebSocket is terminated (its TCP socket
 * destroyed) at once, and its buffers go with it.
 */
function dropNow(socket: ConnectorSocket): void {
  const ws = webSocketOf(socket);
  socket.conn.close(true);
  ws?.terminate();
}

/** Bytes queued for a socket: the WebSocket's unsent bytes plus engine.io's write buffer. */
function bufferedBytes(socket: ConnectorSocket): number {
  // Packets still in engine.io's buffer (polling, or a paused transport): count ~1 KB each.
  return (webSocketOf(socket)?.bufferedAmount ?? 0) + queuedPackets(socket) * 1024;
}
