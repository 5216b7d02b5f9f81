#!/usr/bin/env bash
# npm run start:split: every role as its own process over Kafka, as in production.
# With KAFKA_BROKERS set it uses that cluster; otherwise it starts the dev broker (librdkafka's
# mock cluster, see scripts/kafka-mock). Redis and MariaDB are started when not running.
# Ctrl-C stops every role; if one role dies, the others are stopped too.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
user_brokers="${KAFKA_BROKERS:-}"
bash scripts/infra.sh up redis mysql
[ -z "$user_brokers" ] && bash scripts/infra.sh up kafka
eval "$(bash scripts/infra.sh env)"
[ -n "$user_brokers" ] && export KAFKA_BROKERS="$user_brokers"
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
  if [ "$role" = connector ]; then
    # As scripts/role.sh runs it: see there.
    MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}" node --expose-gc --max-semi-space-size=2 --import tsx "apps/$role/src/main.ts" &
  else
    node --import tsx "apps/$role/src/main.ts" &
  fi
  pids+=($!)
  echo "started $role (pid $!)"
done
echo "front on http://${HOST:-127.0.0.1}:${PORT:-8080} (GET /v1/route answered there too); Ctrl-C stops every role."
wait -n
echo "a role exited; stopping the others" >&2
