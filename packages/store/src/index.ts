export { createRedis, waitReady, guard, defineScripts, registerScripts, redisSeconds, Redis, type RedisOptions, type ScriptDefinitions } from './redis.js';
export {
  RedisStore,
  keys,
  seqOf,
  tsOf,
  DELETED_CHANNEL,
  parseMessagesDeleted,
  KICKED_CHANNEL,
  type MessagesDeleted,
  type RoomKick,
  type AppendEntry,
  type AppendResult,
  type ReadResult,
  type StoreOptions,
  type MessageLog,
} from './store.js';
export { openStore, openClients, describeRedis } from './open.js';
export { createCluster, asRedis, isCluster, execSpread, parseSeeds, nodeOfKey, Cluster, type Command, type CommandReply, type ClusterOptions } from './cluster.js';
export { RedisSignals, waitClusterReady, type Signals, type SignalHandler, type Subscription } from './signals.js';
export {
  streamKeys,
  roomKeys,
  aliasKeys,
  globalKeys,
  replayKeys,
  deploymentKeys,
  channels,
  slotOf,
  bucketOf,
  fnv1a,
  SPREAD_TAGS,
  SPREAD_BUCKETS,
  CLUSTER_SLOTS,
} from './keys.js';
