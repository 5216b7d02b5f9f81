import type { Socket } from 'socket.io';

/**
 * Fan-out writes that skip the per-socket encode: an event is encoded, and its WebSocket frame
 * built, exactly once per group; each socket on a plain open WebSocket then costs one write of
 * that same buffer.
 *
 * Why not `io.to(room).emit()`: it also encodes once, but each socket still goes through
 * socket.io's and engine.io's per-packet bookkeeping (write buffer, flush, drain events), which
 * the profile showed to be as costly as the write itself. Sockets that are not on a plain open
 * WebSocket (long polling, mid-upgrade, packets still queued in engine.io) take the regular
 * path, so their order is kept.
 */

/** A socket.io protocol v5 EVENT on the main namespace, inside an engine.io MESSAGE ("4"), framed. */
export function eventFrame(event: string, payload: unknown): Buffer {
  return wsFrame(0x1, Buffer.from(`42${JSON.stringify([event, payload])}`));
}

/** Writes a frame made by eventFrame() to one socket, or emits the event the regular way. */
export function writeEvent(socket: Socket, frame: Buffer, event: string, payload: unknown): void {
  const sender = directSender(socket);
  if (sender) sender.sendFrame([frame], noop);
  // Typed by the caller's event map; this generic path only forwards.
  else (socket.emit as (event: string, payload: unknown) => boolean)(event, payload);
}

function noop(): void {}

export interface WsSender {
  sendFrame(list: Buffer[], cb?: (err?: Error) => void): void;
  /** ws >= 8.17: non-zero while it is busy with a Blob; our frames must then queue behind it. */
  _state?: number;
}

interface WsLike {
  readyState: number;
  _sender?: WsSender;
}

interface EngineConn {
  readyState: string;
  upgrading: boolean;
  writeBuffer: unknown[];
  transport: { name: string; socket?: WsLike };
}

/** The ws sender of a socket on an open WebSocket with nothing queued in engine.io, else null. */
function directSender(socket: Socket): WsSender | null {
  const conn = socket.conn as unknown as EngineConn;
  if (conn.readyState !== 'open' || conn.upgrading || conn.writeBuffer.length > 0 || conn.transport.name !== 'websocket') return null;
  return wsSender(conn.transport.socket);
}

/** The sender of an open `ws` WebSocket that has nothing queued, else null. */
export function wsSender(ws: WsLike | undefined): WsSender | null {
  // 1 = OPEN. `_sender` is what engine.io itself writes pre-encoded frames to.
  if (!ws || ws.readyState !== 1) return null;
  const sender = ws._sender;
  if (!sender || typeof sender.sendFrame !== 'function' || (sender._state ?? 0) !== 0) return null;
  return sender;
}

/** An unmasked, final WebSocket frame (RFC 6455 5.2), header and payload in one buffer: one write, no writev. */
export function wsFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const header = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(header + length);
  frame[0] = 0x80 | opcode;
  if (header === 2) {
    frame[1] = length;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  payload.copy(frame, header);
  return frame;
}

/** A text frame (kept for callers that frame a string). */
export function textFrame(text: string): Buffer {
  return wsFrame(0x1, Buffer.from(text));
}
