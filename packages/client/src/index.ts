/**
 * The Danmaku client SDK, for browsers and Node (no Node-only imports: fetch, timers, socket.io-client).
 *
 * It asks the router how to connect, uses a socket.io long connection when told to and polls the
 * HTTP API otherwise. Three failed connects in a row degrade it to polling; it tries long again
 * later, with backoff. Whatever the mode, messages reach `onMessages` once each (dedup by id and
 * by seq per type) and in seq order per type, across reconnects and mode switches.
 *
 * Inside: routing.ts (where and how to connect), long.ts and short.ts (the two transports behind
 * transport.ts's interface), delivery.ts (dedup and order), metrics.ts (client-metrics reports),
 * client.ts (the client that drives them).
 */
import { DanmakuClient } from './client.js';
import type { ClientOptions } from './options.js';

export { DanmakuClient } from './client.js';
export { ClientError, type ClientOptions, type Mode } from './options.js';
export type { SendBody, SendResult } from './transport.js';
export type { Message, MessageType, RoomInfo } from '@danmaku/protocol';

export function createClient(options: ClientOptions): DanmakuClient {
  return new DanmakuClient(options);
}
