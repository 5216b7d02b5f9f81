#!/usr/bin/env bash
# npm run bench -- NAME [args]: runs bench/NAME.ts after installing and starting what it needs.
# Each bench prints a table and writes JSON under bench/results/.
# npm run bench (no name): the whole suite (bench/all.ts), every scenario in one run, one table.
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-all}
if [ ! -f "bench/$name.ts" ] || [[ "$name" == lib* || "$name" == *-worker || "$name" == fanout-server || "$name" == fanout-baseline ]]; then
  echo "usage: npm run bench [-- NAME]   (no NAME: the whole suite; NAME one of: $(ls bench/*.ts 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.ts$//' | grep -Ev '^(lib|fanout-server|fanout-baseline)$|-worker$' | tr '\n' ' '))
To load test a running deployment (any URL; no server started): npm run load -- --help" >&2
  exit 2
fi
[ $# -gt 0 ] && shift
. scripts/lib/node.sh
# The servers a bench starts run compiled (packages/testkit spawnTs); the bench itself from source.
bash scripts/build.sh
# Crowds of connections need one descriptor each: take the hard limit of open files (raised first
# where the machine allows it; a container without CAP_SYS_RESOURCE keeps its hard limit, and the
# connections bench says what that caps).
ulimit -Hn 1048576 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
export DANMAKU_REDIS_PERSIST=0
bash scripts/infra.sh up redis mysql >/dev/null
eval "$(bash scripts/infra.sh env)"
# A bench that runs over Kafka starts brokers of its own and names them; a broker infra.sh left up
# must not turn the in-memory rows into Kafka rows.
unset KAFKA_BROKERS
bash scripts/kafka-broker.sh libs >/dev/null
exec node --conditions=source --import tsx "bench/$name.ts" "$@"
