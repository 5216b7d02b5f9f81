import type { WebSocket } from 'ws';

/**
 * The one private part of `ws` this app relies on, pinned to the exact version in
 * apps/connector/package.json; apps/connector/test/internals.test.ts fails when its shape changes.
 *
 * A fan-out writes the same bytes to thousands of sockets. `ws.send()` frames the payload again
 * for each of them (a header buffer and a two-buffer writev per socket); the sender's
 * `sendFrame([frame])`, which engine.io itself calls with frames socket.io built once, writes a
 * frame already built (wsFrame) as it is: one buffer, one write.
 */

interface Sender {
  sendFrame(list: Buffer[], cb?: (err?: Error) => void): void;
  /** Non-zero while it is busy with a Blob: a frame must then queue behind it, through send(). */
  _state?: number;
}

/** Writes a frame made by wsFrame() to an open WebSocket with nothing held in its sender; false when it did not. */
export function writeFramed(ws: WebSocket, frame: Buffer): boolean {
  if (ws.readyState !== 1) return false; // OPEN
  const sender = (ws as unknown as { _sender?: Sender })._sender;
  if (!sender || typeof sender.sendFrame !== 'function' || (sender._state ?? 0) !== 0) return false;
  sender.sendFrame([frame]);
  return true;
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
