import type { Socket } from 'socket.io';
import type { WebSocket } from 'ws';
import { wsFrame } from './ws.js';

/**
 * What this app reads of engine.io's connection object (`socket.conn`) beyond its documented API,
 * pinned with socket.io and engine.io to the exact versions in apps/connector/package.json;
 * apps/connector/test/internals.test.ts fails when any of it changes shape or meaning.
 *
 * The fan-out writes one pre-built frame to each socket on a plain open WebSocket (see
 * ../fanout.ts), which needs to know that nothing of engine.io's is queued in front of it
 * (`writeBuffer`, `upgrading`) and which `ws` WebSocket carries the socket (`transport.socket`).
 */
interface EngineConn {
  readyState: string;
  upgrading: boolean;
  writeBuffer: unknown[];
  transport: { name: string; socket?: WebSocket };
}

const connOf = (socket: Socket): EngineConn => socket.conn as unknown as EngineConn;

/** The WebSocket of a socket that is open on it with nothing queued in engine.io, else null. */
export function idleWebSocket(socket: Socket): WebSocket | null {
  const conn = connOf(socket);
  if (conn.readyState !== 'open' || conn.upgrading || conn.writeBuffer.length > 0 || conn.transport.name !== 'websocket') return null;
  return conn.transport.socket ?? null;
}

/** The WebSocket under a socket when its transport is one (not long polling). */
export function webSocketOf(socket: Socket): WebSocket | undefined {
  const transport = connOf(socket).transport;
  return transport.name === 'websocket' ? transport.socket : undefined;
}

/** Packets waiting in engine.io's own buffer (long polling between polls, or a paused transport). */
export function queuedPackets(socket: Socket): number {
  return connOf(socket).writeBuffer.length;
}

/**
 * Lets go of the HTTP request that opened the connection: engine.io keeps it for the
 * connection's life, and nothing here reads it after the handshake (socket.handshake is built).
 */
export function releaseRequest(socket: Socket): void {
  (socket.conn as unknown as { request: unknown }).request = null;
}

/**
 * A socket.io protocol v5 EVENT on the main namespace (`2` + JSON array) inside an engine.io
 * protocol v4 MESSAGE (`4`), in a WebSocket text frame: what `socket.emit(event, payload)` puts
 * on a WebSocket for a payload without binary parts.
 */
export function eventFrame(event: string, payload: unknown): Buffer {
  return wsFrame(0x1, Buffer.from(`42${JSON.stringify([event, payload])}`));
}
