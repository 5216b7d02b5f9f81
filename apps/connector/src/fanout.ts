import type { Server, Socket } from 'socket.io';

/**
 * Emits one event to every socket of a socket.io room with the packet encoded, and its WebSocket
 * frame built, exactly once; each WebSocket socket then costs one write of that same buffer.
 *
 * Why not `io.to(room).emit()`: it also encodes once, but each socket still goes through
 * socket.io's and engine.io's per-packet bookkeeping (write buffer, flush, drain events), which
 * the profile showed to be as costly as the write itself. Sockets that are not on a plain open
 * WebSocket (long polling, mid-upgrade, packets still queued in engine.io) take the regular
 * path, so their order is kept.
 */
export function emitToRoom(io: Server, room: string, event: string, payload: unknown): number {
  const ids = io.sockets.adapter.rooms.get(room);
  if (!ids || ids.size === 0) return 0;
  // socket.io protocol v5 EVENT on the main namespace, inside an engine.io MESSAGE ("4").
  const frame = textFrame(`42${JSON.stringify([event, payload])}`);
  const list = [frame];
  let sent = 0;
  for (const id of ids) {
    const socket = io.sockets.sockets.get(id);
    if (!socket) continue;
    const sender = directSender(socket);
    if (sender) sender.sendFrame(list, noop);
    else socket.emit(event, payload);
    sent++;
  }
  return sent;
}

function noop(): void {}

interface WsSender {
  sendFrame(list: Buffer[], cb?: (err?: Error) => void): void;
}

interface EngineConn {
  readyState: string;
  upgrading: boolean;
  writeBuffer: unknown[];
  transport: { name: string; socket?: { readyState: number; _sender?: WsSender } };
}

/** The ws sender of a socket on an open WebSocket with nothing queued in engine.io, else null. */
function directSender(socket: Socket): WsSender | null {
  const conn = socket.conn as unknown as EngineConn;
  if (conn.readyState !== 'open' || conn.upgrading || conn.writeBuffer.length > 0 || conn.transport.name !== 'websocket') return null;
  const ws = conn.transport.socket;
  // 1 = OPEN. `_sender` is what engine.io itself writes pre-encoded frames to.
  if (!ws || ws.readyState !== 1 || typeof ws._sender?.sendFrame !== 'function') return null;
  return ws._sender;
}

/** An unmasked, final WebSocket text frame (RFC 6455 5.2): header and payload in one buffer. */
export function textFrame(text: string): Buffer {
  const length = Buffer.byteLength(text);
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x81;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  frame.write(text, header, 'utf8');
  return frame;
}
