export { createRedis, waitReady, guard, Redis, type RedisOptions } from './redis.js';
export { RedisStore, keys, seqOf, type AppendEntry, type AppendResult, type ReadResult, type StoreOptions } from './store.js';
export { openStore } from './open.js';
