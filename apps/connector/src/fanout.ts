import type { Socket } from 'socket.io';
import { eventFrame, idleWebSocket } from './internals/engine-io.js';
import { writeFramed } from './internals/ws.js';

/**
 * Fan-out writes that skip the per-socket encode: an event is encoded, and its WebSocket frame
 * built, exactly once per group; each socket on a plain open WebSocket then costs one write of
 * that same buffer.
 *
 * Why not `io.to(room).emit()`: it also encodes once, but each socket still goes through
 * socket.io's and engine.io's per-packet bookkeeping (write buffer, flush, drain events), which
 * the profile showed to be as costly as the write itself. Sockets that are not on a plain open
 * WebSocket (long polling, mid-upgrade, packets still queued in engine.io) take the regular
 * path, so their order is kept. What this reads of engine.io and ws beyond their documented API
 * is in ./internals, pinned and covered by a contract test.
 */

export { eventFrame };

/** Writes a frame made by eventFrame() to one socket, or emits the event the regular way. */
export function writeEvent(socket: Socket, frame: Buffer, event: string, payload: unknown): void {
  const ws = idleWebSocket(socket);
  if (ws && writeFramed(ws, frame)) return;
  // Typed by the caller's event map; this generic path only forwards.
  (socket.emit as (event: string, payload: unknown) => boolean)(event, payload);
}
