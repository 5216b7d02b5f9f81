import type { Server as HttpServer } from 'node:http';
import { Server, type Socket } from 'socket.io';
import { Ajv } from 'ajv';
import type { Auth, Principal } from '@danmaku/auth';
import type { Config } from '@danmaku/config';
import { toApiError } from '@danmaku/http';
import type { Ingest } from '@danmaku/ingest';
import {
  ApiError,
  DEFAULT_POLL_TYPES,
  ROOM_ID_PATTERN,
  MESSAGE_TYPES,
  decodeCursor,
  sendMessageBodySchema,
  type Cursor,
  type MessageType,
  type SendMessageBody,
} from '@danmaku/model';
import { counter, gauge } from '@danmaku/observability';
import type { StoredMessage } from '@danmaku/push';
import { drops, type ConnectorCore } from './core.js';
import { emitToRoom } from './fanout.js';
import type { RoomEvent, Session, Transport } from './transport.js';

const socketsGauge = gauge({ name: 'danmaku_connector_sockets', help: 'Open socket.io sockets' });
const sends = counter<'result'>({ name: 'danmaku_connector_sends_total', help: 'Sends over the socket, by result', labelNames: ['result'] });
const handshakes = counter<'result'>({ name: 'danmaku_connector_handshakes_total', help: 'Handshakes, by result', labelNames: ['result'] });

// Socket payloads get the same strictness as HTTP bodies: wrong types are errors, never coerced.
const ajv = new Ajv({ allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false });
const joinSchema = {
  type: 'object',
  required: ['roomId'],
  additionalProperties: false,
  properties: {
    roomId: { type: 'string', pattern: ROOM_ID_PATTERN },
    types: { type: 'array', minItems: 1, maxItems: MESSAGE_TYPES.length, uniqueItems: true, items: { type: 'string', enum: MESSAGE_TYPES } },
    cursor: { type: 'string', maxLength: 512 },
  },
} as const;
const leaveSchema = { type: 'object', required: ['roomId'], additionalProperties: false, properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN } } } as const;
const sendSchema = {
  ...sendMessageBodySchema,
  required: ['roomId', ...sendMessageBodySchema.required],
  properties: { roomId: { type: 'string', pattern: ROOM_ID_PATTERN }, ...sendMessageBodySchema.properties },
} as const;
const validJoin = ajv.compile<{ roomId: string; types?: MessageType[]; cursor?: string }>(joinSchema);
const validLeave = ajv.compile<{ roomId: string }>(leaveSchema);
const validSend = ajv.compile<SendMessageBody & { roomId: string }>(sendSchema);

type Ack = (answer: unknown) => void;

function errorBody(err: unknown): { ok: false; error: { code: string; message: string } } {
  const apiError = err instanceof ApiError ? err : toApiError(err as Error);
  return { ok: false, ...apiError.toBody() };
}

function describe(errors: typeof validJoin.errors): string {
  const first = errors?.[0];
  if (!first) return 'The payload is not valid.';
  const field = first.instancePath ? `"${first.instancePath.slice(1)}"` : 'the payload';
  if (first.keyword === 'additionalProperties') return `Unknown field "${String(first.params.additionalProperty)}".`;
  if (first.keyword === 'required') return `Missing field "${String(first.params.missingProperty)}".`;
  return `${field} ${first.message ?? 'is not valid'}.`;
}

export interface SocketIoOptions {
  config: Config;
  auth: Auth;
  /** The same write path as HTTP sends; null when this node has no bus (sends answer 503). */
  ingest: Ingest | null;
  server: HttpServer;
  core: ConnectorCore;
}

/** A socket.io socket as the core sees it. */
class SocketIoSession implements Session {
  readonly transport = 'socket.io';
  readonly rooms = new Map<string, string>();
  constructor(
    readonly socket: Socket,
    readonly principal: Principal | null,
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
    void this.socket.join(group);
  }
  leaveGroup(group: string): void {
    void this.socket.leave(group);
  }
  catchUp(roomId: string, messages: StoredMessage[], cursor: string, skipped: boolean): void {
    this.socket.emit('messages', { roomId, messages, cursor, ...(skipped ? { skipped: true } : {}) });
  }
}

/**
 * socket.io, this project's own protocol: the token checked in the handshake; join, leave and
 * send events; `messages`, `room` and `deleted` events out.
 */
export class SocketIoTransport implements Transport {
  readonly name = 'socket.io';
  readonly io: Server;

  constructor(private readonly options: SocketIoOptions) {
    const { config, auth, core } = options;
    const io = new Server(options.server, {
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
    this.io = io;

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
      (socket.data as { session?: SocketIoSession }).session = new SocketIoSession(socket, principal);
      next();
    });

    io.on('connection', (socket) => {
      const session = (socket.data as { session: SocketIoSession }).session;
      core.opened(session);
      socketsGauge.inc();
      socket.on('join', (payload: unknown, ack: unknown) => void this.join(session, payload, ack));
      socket.on('leave', (payload: unknown, ack: unknown) => {
        if (!validLeave(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describe(validLeave.errors)));
        core.leave(session, payload.roomId);
        if (typeof ack === 'function') (ack as Ack)({ ok: true });
      });
      socket.on('send', (payload: unknown, ack: unknown) => void this.send(session, payload, ack));
      // Anything else a client emits is not part of the protocol.
      socket.onAny((event: string) => {
        if (event !== 'join' && event !== 'leave' && event !== 'send') this.reject(session, undefined, new ApiError(400, 'invalid_request', `Unknown event "${event}".`));
      });
      socket.on('disconnect', () => {
        socketsGauge.dec();
        core.closed(session);
      });
    });
  }

  get sessionCount(): number {
    return this.io.engine.clientsCount;
  }

  /** Bad input drops the socket (never the process); the ack, when there is one, says why. */
  private reject(session: SocketIoSession, ack: unknown, err: ApiError): void {
    if (typeof ack === 'function') (ack as Ack)(errorBody(err));
    drops.inc({ reason: 'bad_input', transport: this.name });
    session.socket.disconnect(true);
  }

  private async join(session: SocketIoSession, payload: unknown, ack: unknown): Promise<void> {
    if (typeof ack !== 'function') return this.reject(session, ack, new ApiError(400, 'invalid_request', '`join` needs an acknowledgement callback.'));
    if (!validJoin(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describe(validJoin.errors)));
    const types = payload.types ?? [...DEFAULT_POLL_TYPES];
    let cursor: Cursor | null = null;
    if (payload.cursor !== undefined) {
      cursor = decodeCursor(payload.cursor);
      if (!cursor) return (ack as Ack)(errorBody(new ApiError(400, 'invalid_cursor', 'The cursor is not one this server gave out; join without it to start again.')));
    }
    try {
      const joined = await this.options.core.join(session, payload.roomId, types, cursor);
      if (joined !== null) (ack as Ack)({ ok: true, cursor: joined });
    } catch (err) {
      (ack as Ack)(errorBody(err));
    }
  }

  private async send(session: SocketIoSession, payload: unknown, ack: unknown): Promise<void> {
    if (typeof ack !== 'function') return this.reject(session, ack, new ApiError(400, 'invalid_request', '`send` needs an acknowledgement callback.'));
    if (!validSend(payload)) return this.reject(session, ack, new ApiError(400, 'invalid_request', describe(validSend.errors)));
    if (!session.principal) {
      sends.inc({ result: 'refused' });
      return (ack as Ack)(errorBody(new ApiError(401, 'missing_token', 'Sending needs a token: connect with auth: { token }.')));
    }
    const { roomId, ...body } = payload;
    try {
      if (!this.options.ingest) throw new ApiError(503, 'send_unavailable', 'This connection cannot take messages right now; send them over HTTP.', 1);
      const accepted = await this.options.ingest.accept(roomId, body, session.principal, { ip: session.ip });
      sends.inc({ result: 'ok' });
      (ack as Ack)({ ok: true, ...accepted });
    } catch (err) {
      sends.inc({ result: 'refused' });
      (ack as Ack)(errorBody(err));
    }
  }

  deliver(group: string, event: RoomEvent): number {
    switch (event.kind) {
      case 'messages':
        // One encoding per group, one write per socket.
        return emitToRoom(this.io, group, 'messages', { roomId: event.roomId, messages: event.messages, cursor: event.cursor });
      case 'deleted':
        this.io.to(group).emit('deleted', { roomId: event.roomId, ids: event.ids });
        return 0;
      case 'room':
        this.io.to(group).emit('room', { roomId: event.roomId, online: event.online, likes: event.likes });
        return 0;
      default:
        // Live start/end reaches socket.io clients through the room's state (GET /v1/rooms/:roomId).
        return 0;
    }
  }

  async close(): Promise<void> {
    this.io.disconnectSockets(true);
    // io.close() would also close the HTTP server, which belongs to whoever passed it in.
    this.io.engine.close();
  }
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
