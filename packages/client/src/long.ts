/** The long connection: one socket.io connection to one connector, joined to one room. */
import { io, type Socket } from 'socket.io-client';
import type { ClientToServerEvents, JoinRequest, MessageType, ServerToClientEvents } from '@danmaku/protocol';
import { ClientError } from './options.js';
import type { SendBody, SendResult, Transport, TransportEvents } from './transport.js';

export interface LongOptions {
  url: string;
  roomId: string;
  types: MessageType[];
  token?: string;
  /** Handshake and join within this, or the attempt failed; also how long a send waits for its ack. */
  connectTimeoutMs: number;
}

/** Join refusals that are about the viewer, not the connection: no connector or mode would do better. */
const FINAL_REFUSALS = new Set(['banned', 'invalid_request']);

/**
 * One attempt: it connects, joins with the cursor, and reports up, or failed once. After up, a
 * disconnect is reported as lost. socket.io's own reconnection is off: the client picks the next
 * connector (the one it was on may be gone) and rejoins with its cursor.
 */
export class LongTransport implements Transport {
  readonly mode = 'long' as const;
  private socket: Socket<ServerToClientEvents, ClientToServerEvents> | null = null;
  private watchdog: ReturnType<typeof setTimeout> | null = null;
  /** Up or failed has been told; a later failure of this attempt is not news. */
  private settled = false;
  private joined = false;

  constructor(
    private readonly options: LongOptions,
    private readonly events: TransportEvents,
  ) {}

  /** Joined: sends can go this way. */
  get ready(): boolean {
    return this.joined;
  }

  open(): void {
    const { url, roomId, connectTimeoutMs } = this.options;
    const started = Date.now();
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      timeout: connectTimeoutMs,
      auth: this.options.token ? { token: this.options.token } : {},
    });
    this.socket = socket;
    this.watchdog = setTimeout(() => this.fail('timeout'), connectTimeoutMs);

    socket.on('connect', () => {
      const join: JoinRequest = { roomId, types: this.options.types };
      const cursor = this.events.cursor();
      if (cursor) join.cursor = cursor;
      socket
        .timeout(connectTimeoutMs)
        .emitWithAck('join', join)
        .then((ack) => {
          if (this.settled || this.socket !== socket) return;
          if (!ack.ok) {
            if (FINAL_REFUSALS.has(ack.error.code)) {
              this.settle();
              this.close();
              this.events.refused(new ClientError(ack.error.code, ack.error.message, 403));
              return;
            }
            return this.fail(ack.error.code);
          }
          this.settle();
          this.joined = true;
          this.events.advance(ack.cursor);
          this.events.up(Date.now() - started);
        })
        .catch(() => this.fail('join_timeout'));
    });
    socket.on('connect_error', (err: Error) => this.fail(err.message));
    // What a catch-up or a push brings; the catch-up comes before the join's ack.
    socket.on('messages', (packet) => {
      if (packet.roomId !== roomId) return;
      if (packet.skipped && packet.cursor) this.events.rewind(packet.cursor);
      this.events.messages(packet.messages);
      if (packet.cursor) this.events.advance(packet.cursor);
    });
    socket.on('deleted', (packet) => {
      if (packet.roomId === roomId) this.events.deleted(packet.ids);
    });
    socket.on('room', (info) => {
      if (info.roomId === roomId) this.events.room(info);
    });
    // The connector is going away (a deploy): elsewhere, with the cursor. Its close follows.
    socket.on('move', () => {
      if (this.socket !== socket || !this.joined) return;
      this.close();
      this.events.moved();
    });
    // A moderator took this user out of the room: no rejoin (a ban would refuse it anyway).
    socket.on('kicked', (packet) => {
      if (packet.roomId !== roomId) return;
      this.close();
      this.events.refused(new ClientError(packet.code, packet.message, 403));
    });
    socket.on('disconnect', () => {
      if (this.socket !== socket) return;
      const wasJoined = this.joined;
      this.joined = false;
      if (!this.settled) return this.fail('disconnected');
      this.close();
      if (wasJoined) this.events.lost();
    });
  }

  close(): void {
    this.settle();
    this.joined = false;
    const socket = this.socket;
    this.socket = null;
    if (socket) {
      socket.removeAllListeners();
      socket.close();
    }
  }

  async send(body: SendBody): Promise<SendResult | null> {
    const socket = this.socket;
    if (!socket || !this.joined) return null;
    let ack;
    try {
      ack = await socket.timeout(this.options.connectTimeoutMs).emitWithAck('send', { roomId: this.options.roomId, ...body });
    } catch {
      // The socket went away mid-send, or the ack is late: the caller sends over HTTP.
      return null;
    }
    if (ack.ok) return { id: ack.id, ts: ack.ts };
    throw new ClientError(ack.error.code, ack.error.message);
  }

  private settle(): void {
    this.settled = true;
    if (this.watchdog) clearTimeout(this.watchdog);
    this.watchdog = null;
  }

  private fail(reason: string): void {
    if (this.settled || !this.socket) return;
    this.close();
    this.events.failed(reason);
  }
}
