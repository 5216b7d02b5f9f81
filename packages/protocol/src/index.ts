/**
 * The wire contract: messages, the cursor codec, the send schema, the socket.io events and the
 * HTTP answers the SDK reads (route, client metrics).
 * Browser-safe (no Node built-ins), so the SDK and the servers share one definition.
 * Compiled validators for servers are in `@danmaku/protocol/validate`.
 */
export * from './message.js';
export * from './schemas.js';
export * from './cursor.js';
export * from './socket.js';
export * from './http.js';
