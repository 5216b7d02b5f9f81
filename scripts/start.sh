#!/usr/bin/env bash
# npm start: the standalone system (every role, in-memory bus) on http://127.0.0.1:${PORT:-8080},
# after installing and starting Redis and MariaDB when they are not running. It runs compiled
# (scripts/role.sh standalone) on the repository's Node, after `npm run build` (incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
bash scripts/build.sh
bash scripts/infra.sh up redis mysql
# The embedded default stays embedded whatever else infra.sh runs: only the Redis and MariaDB
# addresses are taken from it, never a Kafka or a Redis Cluster a split topology left up. A Kafka
# or Redis Cluster the user names in the environment is still used.
user_env=$(export -p | grep -E '^declare -x (KAFKA_BROKERS|REDIS_CLUSTER_NODES)=' || true)
eval "$(bash scripts/infra.sh env | grep -E '^export (REDIS_URL|MYSQL_URL)=')"
eval "$user_env"
exec sh scripts/role.sh standalone
