export { createRedis, waitReady, guard, defineScripts, redisSeconds, Redis, type RedisOptions } from './redis.js';
export { RedisStore, keys, seqOf, DELETED_CHANNEL, type MessagesDeleted, type AppendEntry, type AppendResult, type ReadResult, type StoreOptions } from './store.js';
export { openStore } from './open.js';
