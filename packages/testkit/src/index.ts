export { runRace, type RaceOptions, type RaceOutcome } from './race.js';
export { startKafka, type KafkaBroker, type StartKafkaOptions, type TestKafka } from './kafka.js';
export {
  LOAD_ENV,
  REPO_ROOT,
  freePort,
  sleep,
  spawnTs,
  startRedis,
  testConfig,
  tokenFor,
  uniqueRoom,
  waitFor,
  type Spawned,
  type TestRedis,
} from './harness.js';
export { startRedisCluster, type TestRedisCluster, type ClusterNode } from './redis-cluster.js';
export { browserBundle, importsNodeBuiltin } from './bundle.js';
export { startMariaDb, type TestMariaDb } from './mariadb.js';
export { readRoom, type ReadRoomOptions } from './read-room.js';
export { TOPOLOGY_PORTS, freePorts, startTopology, topologyRoles, type RunningTopology } from './topology.js';
export { measurePollCost, type PollCost, type PollCostOptions } from './poll-cost.js';
