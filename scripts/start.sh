#!/usr/bin/env bash
# npm start: the standalone system (every role, in-memory bus) on http://127.0.0.1:${PORT:-8080},
# after installing and starting Redis and MariaDB when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/infra.sh up redis mysql
# The embedded default stays embedded whatever else infra.sh runs: only the Redis and MariaDB
# addresses are taken from it, never a Kafka or a Redis Cluster a split topology left up. A Kafka
# or Redis Cluster the user names in the environment is still used.
user_env=$(export -p | grep -E '^declare -x (KAFKA_BROKERS|REDIS_CLUSTER_NODES)=' || true)
eval "$(bash scripts/infra.sh env | grep -E '^export (REDIS_URL|MYSQL_URL)=')"
eval "$user_env"
# As scripts/role.sh runs the roles that hold long connections.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node --expose-gc --import tsx apps/standalone/src/main.ts
