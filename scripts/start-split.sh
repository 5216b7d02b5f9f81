#!/usr/bin/env bash
# npm run start:split: every role as its own process over Kafka, as in production.
# With KAFKA_BROKERS set it uses that cluster; otherwise it starts one Apache Kafka broker
# (infra.sh up kafka). Redis and MariaDB are started when not running.
# Ctrl-C stops every role; if one role dies, the others are stopped too. Roles run compiled
# (scripts/role.sh) on the repository's Node, after `npm run build` (incremental).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
bash scripts/build.sh
user_brokers="${KAFKA_BROKERS:-}"
bash scripts/infra.sh up redis mysql
[ -z "$user_brokers" ] && bash scripts/infra.sh up kafka
eval "$(bash scripts/infra.sh env | grep -E '^export (REDIS_URL|MYSQL_URL|KAFKA_BROKERS)=')"
[ -n "$user_brokers" ] && export KAFKA_BROKERS="$user_brokers"
# The development broker allows short group sessions: a dead processor's partitions move in 3 s.
[ -z "$user_brokers" ] && export DANMAKU_KAFKA_SESSION_TIMEOUT_MS="${DANMAKU_KAFKA_SESSION_TIMEOUT_MS:-3000}"
echo "Kafka: $KAFKA_BROKERS"

pids=()
stop_all() {
  trap - INT TERM EXIT
  [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap stop_all INT TERM EXIT

# Consumers first, the front (which takes traffic) last.
for role in processor archiver pusher connector router front; do
  [ -f "apps/$role/src/main.ts" ] || continue
  # role.sh execs node: $! is the role's node process.
  sh scripts/role.sh "$role" &
  pids+=($!)
  echo "started $role (pid $!)"
done
echo "front on http://${HOST:-127.0.0.1}:${PORT:-8080} (GET /v1/route answered there too); Ctrl-C stops every role."
wait -n
echo "a role exited; stopping the others" >&2
