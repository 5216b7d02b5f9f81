import type { IncomingMessage, Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server as TcpServer, type Socket as TcpSocket } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Auth, Principal } from '@danmaku/auth';
import {
  AUTH_OK,
  AUTH_REFUSED,
  MAX_CLIENT_PACKET,
  Op,
  PacketStream,
  ProtocolError,
  encodeMessages,
  heartbeatReply,
  liveStart,
  likeInfo,
  messageBody,
  messagesDeleted,
  onlineRankCount,
  parseAuth,
  preparing,
  numericUid,
  resolveRoomid,
  roomBlock,
  splitPackets,
  watchedChange,
  type AliasRedis,
  type Packet,
} from '@danmaku/bilibili';
import { DEFAULT_POLL_TYPES, isRoomId, type KickedPacket, type Message } from '@danmaku/protocol';
import { counter, type Logger } from '@danmaku/observability';
import { LISTEN_BACKLOG } from '@danmaku/http';
import { drops, type ConnectorCore } from './core.js';
import { wsFrame, writeFramed } from './internals/ws.js';
import type { RoomEvent, Session, Transport } from './transport.js';

const auths = counter<'result'>({ name: 'danmaku_bili_auths_total', help: 'Bilibili-protocol auth packets, by result', labelNames: ['result'] });
const packetsOut = counter<'protover'>({ name: 'danmaku_bili_packets_encoded_total', help: 'Merged message packets encoded, once per (group, protover)', labelNames: ['protover'] });

/** The path of the WebSocket transport on the connector's HTTP server. */
export const BILI_WS_PATH = '/sub';
/** A connection must authenticate within this (the protocol's clients do it at once). */
export const AUTH_TIMEOUT_MS = 5000;
/** Clients beat every 30 s: a connection silent for this long is gone. */
export const IDLE_TIMEOUT_MS = 75_000;

export interface BilibiliOptions {
  core: ConnectorCore;
  auth: Auth;
  logger: Logger;
  /** Where numeric aliases of rooms are looked up. */
  redis: AliasRedis;
  /** The HTTP server that gets the WebSocket endpoint at /sub. */
  server: HttpServer;
  host: string;
  /** Raw TCP port; 0 = no TCP. */
  tcpPort: number;
  authTimeoutMs?: number;
}

type Wire = { kind: 'ws'; ws: WebSocket } | { kind: 'tcp'; socket: TcpSocket };

class BiliSession implements Session {
  readonly transport = 'bilibili';
  readonly rooms = new Map<string, string>();
  principal: Principal | null = null;
  /** null until auth was accepted; the protover picks the encoding of message packets. */
  protover = 0;
  roomid = 0;
  roomId: string | null = null;
  state: 'new' | 'authing' | 'open' | 'closed' = 'new';
  /** When the connection opened, then when its client last sent a packet (the shared sweeps read it). */
  lastSeen = Date.now();
  /** TCP: the bytes of a packet whose rest has not arrived; none while idle. */
  stream: PacketStream | null = null;

  constructor(
    readonly wire: Wire,
    readonly ip: string | undefined,
    private readonly groups: GroupMembers,
  ) {}

  isOpen(): boolean {
    return this.state !== 'closed';
  }

  write(packet: Buffer): void {
    if (this.state === 'closed') return;
    if (this.wire.kind === 'ws') {
      if (this.wire.ws.readyState === 1) this.wire.ws.send(packet, { binary: true });
    } else {
      this.wire.socket.write(packet);
    }
  }

  /**
   * A fan-out packet: `framed` is the same packet already in a WebSocket binary frame, built once
   * for the whole group, so a WebSocket costs one plain write (no per-socket frame header, no writev).
   */
  writeShared(packet: Buffer, framed: Buffer): void {
    if (this.state === 'closed') return;
    if (this.wire.kind === 'tcp') {
      this.wire.socket.write(packet);
      return;
    }
    if (!writeFramed(this.wire.ws, framed) && this.wire.ws.readyState === 1) this.wire.ws.send(packet, { binary: true });
  }

  bufferedBytes(): number {
    return this.wire.kind === 'ws' ? this.wire.ws.bufferedAmount : this.wire.socket.writableLength;
  }

  drop(): void {
    this.state = 'closed';
    if (this.wire.kind === 'ws') this.wire.ws.terminate();
    else this.wire.socket.destroy();
  }

  /** Writes what is queued (an auth refusal), then closes. */
  end(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    if (this.wire.kind === 'ws') this.wire.ws.close(1000);
    else this.wire.socket.end();
    // A peer that never closes its side does not keep the connection.
    setTimeout(() => (this.wire.kind === 'ws' ? this.wire.ws.terminate() : this.wire.socket.destroy()), 1000).unref();
  }

  enterGroup(group: string): void {
    this.groups.add(group, this);
  }
  leaveGroup(group: string): void {
    this.groups.remove(group, this);
  }
  // Bilibili clients expect no history on connect: recorders would store it twice.
  catchUp(): void {}
  /** The protocol has no "move": the connection closes, and its clients reconnect by themselves. */
  move(): void {
    this.end();
  }
  /** One room per connection: being out of it ends the connection, after the protocol's block notice. */
  kicked(packet: KickedPacket): void {
    const user = this.principal;
    if (user) this.write(encodeMessages([JSON.stringify(roomBlock(numericUid(user.id), user.name, packet.message))], 0));
    this.end();
  }
}

function noop(): void {}

/** The parts of the transport its shared listeners call. */
interface WireOwner {
  finish(session: BiliSession, reason: string | null): void;
  onFrame(session: BiliSession, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void;
  onChunk(session: BiliSession, chunk: Buffer): void;
}

/**
 * One set of listeners for every WebSocket: `this` is the wire (EventEmitter semantics) and the
 * session is looked up, where closures per connection would cost a context and three functions each.
 */
function wsListeners(sessionOf: WeakMap<object, BiliSession>, owner: WireOwner) {
  return {
    error(this: WebSocket): void {
      const session = sessionOf.get(this);
      if (session) owner.finish(session, 'bad_input');
    },
    close(this: WebSocket): void {
      const session = sessionOf.get(this);
      if (session) owner.finish(session, null);
    },
    message(this: WebSocket, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
      const session = sessionOf.get(this);
      if (session) owner.onFrame(session, data, isBinary);
    },
  };
}

/** The same for TCP sockets. */
function tcpListeners(sessionOf: WeakMap<object, BiliSession>, owner: WireOwner) {
  return {
    // 'close' follows 'error' on a net.Socket; it ends the session.
    close(this: TcpSocket): void {
      const session = sessionOf.get(this);
      if (session) owner.finish(session, null);
    },
    data(this: TcpSocket, chunk: Buffer): void {
      const session = sessionOf.get(this);
      if (session) owner.onChunk(session, chunk);
    },
  };
}

/** Which sessions of this transport sit in which group; a group's per-room state goes with it. */
class GroupMembers {
  readonly byGroup = new Map<string, Set<BiliSession>>();
  /** Likes last sent to a group (LIKE_INFO_V3_UPDATE goes out on change). */
  readonly lastLikes = new Map<string, number>();

  add(group: string, session: BiliSession): void {
    let members = this.byGroup.get(group);
    if (!members) this.byGroup.set(group, (members = new Set()));
    members.add(session);
  }

  remove(group: string, session: BiliSession): void {
    const members = this.byGroup.get(group);
    if (!members) return;
    members.delete(session);
    if (members.size === 0) {
      this.byGroup.delete(group);
      this.lastLikes.delete(group);
    }
  }
}

/**
 * The Bilibili live danmaku protocol (16-byte header; ops 2/3/5/7/8; zlib or brotli merged
 * packets), so existing overlay, recorder and bot tools read a room unchanged. WebSocket binary
 * frames at /sub on the connector's HTTP server, and raw TCP. Read-only: these clients send over
 * HTTP, as they do on Bilibili.
 */
export class BilibiliTransport implements Transport {
  readonly name = 'bilibili';
  private readonly groups = new GroupMembers();
  private readonly all = new Set<BiliSession>();
  /** Sessions that have not authenticated yet: the auth sweep looks at these only. */
  private readonly unauthed = new Set<BiliSession>();
  /** Which session a wire belongs to: one set of listeners for every connection instead of closures per connection. */
  private readonly sessionOf = new WeakMap<object, BiliSession>();
  private readonly authTimer: NodeJS.Timeout;
  private readonly wsListeners: ReturnType<typeof wsListeners>;
  private readonly tcpListeners: ReturnType<typeof tcpListeners>;
  /** The last online count per room, for heartbeat replies between room events. */
  private readonly lastOnline = new Map<string, number>();
  private readonly wss: WebSocketServer;
  private tcp: TcpServer | null = null;
  private readonly idleTimer: NodeJS.Timeout;
  private readonly onUpgrade: (req: IncomingMessage, socket: Duplex, head: Buffer) => void;

  private constructor(private readonly options: BilibiliOptions) {
    // Frames over the limit are refused by ws itself (close 1009) before they are buffered whole.
    // Binary frames only (a text frame closes the connection), so ws need not check UTF-8.
    this.wss = new WebSocketServer({ noServer: true, maxPayload: MAX_CLIENT_PACKET, perMessageDeflate: false, clientTracking: false, skipUTF8Validation: true });
    this.onUpgrade = (req, socket, head) => {
      const path = (req.url ?? '').split('?')[0];
      if (path !== BILI_WS_PATH) return; // socket.io's path is socket.io's
      this.wss.handleUpgrade(req, socket, head, (ws) => this.acceptWs(ws, req));
    };
    options.server.on('upgrade', this.onUpgrade);
    this.idleTimer = setInterval(() => {
      const before = Date.now() - IDLE_TIMEOUT_MS;
      for (const session of this.all) if (session.lastSeen < before) this.finish(session, 'idle');
    }, 5000);
    this.idleTimer.unref();
    // One sweep for every connection still to authenticate, instead of a timer each: a
    // connection is closed between authTimeoutMs and 1.25 times that after it opened.
    const authTimeoutMs = options.authTimeoutMs ?? AUTH_TIMEOUT_MS;
    this.authTimer = setInterval(() => {
      const before = Date.now() - authTimeoutMs;
      for (const session of this.unauthed) if (session.lastSeen < before) this.finish(session, 'auth_timeout');
    }, Math.max(10, Math.floor(authTimeoutMs / 4)));
    this.authTimer.unref();
    this.wsListeners = wsListeners(this.sessionOf, this);
    this.tcpListeners = tcpListeners(this.sessionOf, this);
  }

  static async start(options: BilibiliOptions): Promise<BilibiliTransport> {
    const transport = new BilibiliTransport(options);
    if (options.tcpPort > 0) await transport.listenTcp(options.host, options.tcpPort);
    return transport;
  }

  /** The TCP port listened on, or null. */
  get tcpPort(): number | null {
    const address = this.tcp?.address() as AddressInfo | null | undefined;
    return address ? address.port : null;
  }

  get sessionCount(): number {
    return this.all.size;
  }

  private async listenTcp(host: string, port: number): Promise<void> {
    const server = createServer({ noDelay: true }, (socket) => this.acceptTcp(socket));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.options.logger.error({ err }, 'bilibili TCP server error'));
    this.tcp = server;
  }

  private acceptWs(ws: WebSocket, req: IncomingMessage): void {
    const session = this.open({ kind: 'ws', ws }, req.socket.remoteAddress);
    this.sessionOf.set(ws, session);
    ws.on('error', this.wsListeners.error);
    ws.on('close', this.wsListeners.close);
    ws.on('message', this.wsListeners.message);
  }

  /** One frame from a WebSocket client. */
  onFrame(session: BiliSession, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    // The protocol is binary frames; a text frame is some other client talking to the wrong endpoint.
    if (!isBinary) return this.bad(session, new ProtocolError('a text frame'));
    const frame = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
    let packets: Packet[];
    try {
      packets = splitPackets(frame);
    } catch (err) {
      return this.bad(session, err);
    }
    for (const packet of packets) if (!this.handle(session, packet)) return;
  }

  private acceptTcp(socket: TcpSocket): void {
    const session = this.open({ kind: 'tcp', socket }, socket.remoteAddress);
    this.sessionOf.set(socket, session);
    // Errors are followed by 'close', which ends the session; the listener keeps them from being thrown.
    socket.on('error', noop);
    socket.on('close', this.tcpListeners.close);
    socket.on('data', this.tcpListeners.data);
  }

  /** Bytes from a TCP client. */
  onChunk(session: BiliSession, chunk: Buffer): void {
    // A packet split over chunks waits in a PacketStream; between packets (idle) none is kept.
    const stream = session.stream ?? new PacketStream();
    let packets: Packet[];
    try {
      packets = stream.push(chunk);
    } catch (err) {
      return this.bad(session, err);
    }
    session.stream = stream.buffered > 0 ? stream : null;
    for (const packet of packets) if (!this.handle(session, packet)) return;
  }

  private open(wire: Wire, ip: string | undefined): BiliSession {
    const session = new BiliSession(wire, ip, this.groups);
    this.all.add(session);
    this.unauthed.add(session);
    this.options.core.opened(session);
    return session;
  }

  private bad(session: BiliSession, err: unknown): void {
    if (!(err instanceof ProtocolError)) this.options.logger.warn({ err }, 'unexpected error on a bilibili connection');
    this.finish(session, 'bad_input');
  }

  /** A connection ends: it leaves its room, with a reason counted when the server ended it. */
  finish(session: BiliSession, reason: string | null): void {
    if (!this.all.delete(session)) return;
    this.unauthed.delete(session);
    if (reason) drops.inc({ reason, transport: this.name });
    if (session.state !== 'closed') session.drop();
    // The core takes it out of its rooms (leaveGroup included).
    this.options.core.closed(session);
    if (session.roomId && !this.options.core.hub.rooms.has(session.roomId)) this.lastOnline.delete(session.roomId);
  }

  /** One client packet; false when it closed the connection. */
  private handle(session: BiliSession, packet: Packet): boolean {
    // Until the auth packet was read, lastSeen stays the time the connection opened: the auth sweep's clock.
    if (session.state !== 'new') session.lastSeen = Date.now();
    if (packet.op === Op.AUTH && session.state === 'new') {
      session.state = 'authing';
      void this.authenticate(session, packet);
      return true;
    }
    if (packet.op === Op.HEARTBEAT && session.state !== 'new') {
      // In a frame of its own: some clients read only the first packet of a frame for it.
      session.write(heartbeatReply(this.onlineOf(session)));
      return true;
    }
    // Anything else (a message before auth, a second auth, ops clients never send) is not this protocol.
    this.finish(session, 'bad_input');
    return false;
  }

  private onlineOf(session: BiliSession): number {
    if (!session.roomId) return 0;
    const here = this.options.core.hub.rooms.get(session.roomId)?.sockets ?? 0;
    return Math.max(here, this.lastOnline.get(session.roomId) ?? 0);
  }

  private async authenticate(session: BiliSession, packet: Packet): Promise<void> {
    const body = parseAuth(packet.body);
    if (!body) {
      auths.inc({ result: 'malformed' });
      return this.refuse(session);
    }
    if (body.key) {
      // A key from elsewhere (Bilibili's own) is not an error: the connection is anonymous then.
      try {
        session.principal = this.options.auth.verify(body.key);
      } catch {
        session.principal = null;
      }
    }
    try {
      const roomId = await resolveRoomid(this.options.redis, body.roomid);
      if (!isRoomId(roomId)) throw new Error('not a room id');
      session.roomid = body.roomid;
      session.protover = body.protover;
      const joined = await this.options.core.join(session, roomId, [...DEFAULT_POLL_TYPES], null);
      if (joined === null || session.state !== 'authing') return;
      session.roomId = roomId;
      session.state = 'open';
      this.unauthed.delete(session);
      auths.inc({ result: session.principal ? 'user' : 'anonymous' });
      session.write(AUTH_OK);
    } catch {
      // Banned, too many rooms, or Redis away: the protocol has one way to say no.
      auths.inc({ result: 'refused' });
      this.refuse(session);
    }
  }

  private refuse(session: BiliSession): void {
    if (session.state === 'closed') return;
    session.write(AUTH_REFUSED);
    session.end();
    this.finish(session, 'auth_refused');
  }

  deliver(group: string, event: RoomEvent): number {
    const members = this.groups.byGroup.get(group);
    if (!members || members.size === 0) return 0;
    const roomid = (members.values().next().value as BiliSession).roomid;
    const bodies: string[] = [];
    switch (event.kind) {
      case 'messages':
        for (const m of event.messages) {
          // The store keeps the whole API message (seq first), as the front put it on the bus.
          const body = messageBody(m as unknown as Message, roomid);
          if (body) bodies.push(JSON.stringify(body));
        }
        break;
      case 'deleted':
        bodies.push(JSON.stringify(messagesDeleted(roomid, event.ids)));
        break;
      case 'room': {
        const online = Math.max(event.online, this.options.core.hub.rooms.get(event.roomId)?.sockets ?? 0);
        this.lastOnline.set(event.roomId, online);
        bodies.push(JSON.stringify(onlineRankCount(online)), JSON.stringify(watchedChange(online)));
        if (this.groups.lastLikes.get(group) !== event.likes) {
          this.groups.lastLikes.set(group, event.likes);
          bodies.push(JSON.stringify(likeInfo(event.likes)));
        }
        break;
      }
      case 'live':
        bodies.push(JSON.stringify(event.live ? liveStart(roomid, event.live.startedAt) : preparing(roomid)));
        break;
    }
    if (bodies.length === 0) return 0;
    // One encoding per (group, protover), whatever the number of sockets.
    const encoded: Array<Buffer | undefined> = [];
    const framed: Array<Buffer | undefined> = [];
    let reached = 0;
    for (const session of members) {
      if (session.state !== 'open') continue;
      const protover = session.protover;
      let packet = encoded[protover];
      if (!packet) {
        packet = encodeMessages(bodies, protover);
        encoded[protover] = packet;
        packetsOut.inc({ protover: String(protover) });
      }
      session.writeShared(packet, session.wire.kind === 'ws' ? (framed[protover] ??= wsFrame(0x2, packet)) : packet);
      reached++;
    }
    if (event.kind !== 'messages') return 0;
    return reached;
  }

  async close(): Promise<void> {
    clearInterval(this.idleTimer);
    clearInterval(this.authTimer);
    this.options.server.off('upgrade', this.onUpgrade);
    for (const session of [...this.all]) this.finish(session, null);
    const tcp = this.tcp;
    this.tcp = null;
    if (tcp) await new Promise<void>((resolve) => tcp.close(() => resolve()));
  }
}
