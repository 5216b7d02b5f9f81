#!/usr/bin/env bash
# npm run start:cluster: the split topology with every role twice, on a local Redis Cluster
# (3 primaries + 3 replicas), three Apache Kafka brokers (or KAFKA_BROKERS) and MariaDB, all
# started here when missing. The supervisor (scripts/supervisor.ts) restarts roles that die; Ctrl-C stops all.
# Roles run compiled (apps/<role>/dist/main.js) on the repository's Node, after `npm run build`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
bash scripts/build.sh
user_brokers="${KAFKA_BROKERS:-}"
bash scripts/infra.sh up mysql redis-cluster
[ -z "$user_brokers" ] && bash scripts/infra.sh up kafka-cluster
eval "$(bash scripts/infra.sh env | grep -E '^export (MYSQL_URL|REDIS_CLUSTER_NODES|KAFKA_CLUSTER_BROKERS)=')"
if [ -n "$user_brokers" ]; then
  export KAFKA_BROKERS="$user_brokers"
else
  export KAFKA_BROKERS="$KAFKA_CLUSTER_BROKERS"
  # The development brokers allow short group sessions: a dead member's partitions move in 3 s.
  export DANMAKU_KAFKA_SESSION_TIMEOUT_MS="${DANMAKU_KAFKA_SESSION_TIMEOUT_MS:-3000}"
fi
# The supervisor itself is a script run from its TypeScript source; the roles it starts are compiled.
exec node --conditions=source --import tsx scripts/start-cluster.ts
