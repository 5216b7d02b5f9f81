/** The server side of the data model (ids, stream keys, partitions, API errors, HTTP schemas); the wire shapes it builds on are @danmaku/protocol's. */
export * from './message.js';
export * from './errors.js';
export * from './schemas.js';
export * from './send.js';
