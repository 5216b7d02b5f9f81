#!/usr/bin/env bash
# npm run start:cluster: the split topology with every role twice, on a local Redis Cluster
# (3 primaries + 3 replicas), the dev Kafka broker (or KAFKA_BROKERS) and MariaDB, all started
# here when missing. The supervisor (scripts/supervisor.ts) restarts roles that die; Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
user_brokers="${KAFKA_BROKERS:-}"
bash scripts/infra.sh up mysql redis-cluster
[ -z "$user_brokers" ] && bash scripts/infra.sh up kafka
eval "$(bash scripts/infra.sh env)"
[ -n "$user_brokers" ] && export KAFKA_BROKERS="$user_brokers"
exec node --import tsx scripts/start-cluster.ts
