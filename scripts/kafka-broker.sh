#!/usr/bin/env bash
# An Apache Kafka broker in KRaft mode (combined broker + controller), fetched from Maven Central.
# Used by infra.sh (daemons for npm start:split / start:cluster) and by the tests (brokers each test
# owns, packages/testkit/src/kafka.ts).
#
#   kafka-broker.sh libs
#       Prints the directory of the broker's jars, fetching them once (scripts/kafka/pom.xml,
#       mvn dependency:copy-dependencies) into .run/kafka-dist/VERSION/libs. Installs Java and
#       Maven from Debian when missing.
#   kafka-broker.sh run DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID
#       Writes DIR/server.properties, formats DIR/data on its first run, and runs the broker in
#       the foreground (exec: the caller's pid is the JVM's). VOTERS is the controller quorum,
#       "1@127.0.0.1:19093,2@...". With KAFKA_WATCH_STDIN=1 the JVM is killed when stdin closes
#       (a test that dies takes its brokers with it); the JVM's pid is then printed as
#       "JAVA_PID N" on stdout.
#
# Environment: KAFKA_HEAP_OPTS (-Xms256m -Xmx512m), KAFKA_LOG_LEVEL (WARN), KAFKA_LOG_FILE
# (DIR/server.log), KAFKA_EXTRA_PROPERTIES (lines appended to server.properties).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
VERSION="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$POM")"
DIST="$ROOT/.run/kafka-dist/$VERSION"

# shellcheck source=lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

die() { echo "kafka-broker: error: $*" >&2; exit 1; }

libs() {
  if [ -f "$DIST/complete" ]; then echo "$DIST/libs"; return 0; fi
  # Kafka 4 brokers need Java 17 or newer; Debian 12 ships 17.
  ensure_pkgs java openjdk-17-jre-headless mvn maven 9>&- >&2
  mkdir -p "$DIST"
  exec 8>"$DIST.lock"
  flock 8
  if [ ! -f "$DIST/complete" ]; then
    echo "kafka-broker: fetching Apache Kafka $VERSION from Maven Central (once, into $DIST)" >&2
    rm -rf "$DIST/libs"
    mvn -q -B -f "$POM" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$DIST/libs" >"$DIST/mvn.log" 2>&1 ||
      { tail -n 30 "$DIST/mvn.log" >&2; die "mvn could not fetch Kafka $VERSION (log: $DIST/mvn.log)"; }
    touch "$DIST/complete"
  fi
  flock -u 8
  echo "$DIST/libs"
}

run() {
  [ $# -eq 6 ] || die "usage: kafka-broker.sh run DIR NODE_ID PORT CONTROLLER_PORT VOTERS CLUSTER_ID"
  local dir="$1" id="$2" port="$3" cport="$4" voters="$5" cluster="$6" lib voter_count
  lib="$(libs)"
  mkdir -p "$dir"
  voter_count=$(($(tr -cd ',' <<<"$voters" | wc -c) + 1))
  # Replication follows the quorum: one broker keeps one copy, three keep three and need two
  # in sync to acknowledge a write (acks=all), so one broker may die without losing a write.
  local rf=1 isr=1
  if [ "$voter_count" -ge 3 ]; then rf=3; isr=2; fi
  cat >"$dir/server.properties" <<EOF
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$dir/data
auto.create.topics.enable=false
num.partitions=8
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$isr
# A development cluster: the offsets topic small (50 partitions by default, each a file set to
# create), no wait before the first rebalance of a group, short group sessions allowed.
offsets.topic.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
# A replica that falls behind this long leaves the ISR: a killed broker stops holding up acks=all.
replica.lag.time.max.ms=5000
# The controller fences a broker silent this long and moves its partitions' leadership (9 s by
# default); shorter, a killed broker's partitions take writes again sooner. Not shorter still: a
# broker on a loaded 2-core machine must not be fenced for a late heartbeat.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000
# Controlled shutdown hands leadership over before a broker stops (rolling restarts).
controlled.shutdown.enable=true
log.retention.hours=24
log.segment.bytes=67108864
${KAFKA_EXTRA_PROPERTIES:-}
EOF
  cat >"$dir/log4j2.properties" <<EOF
status = error
appender.file.type = File
appender.file.name = file
appender.file.fileName = ${KAFKA_LOG_FILE:-$dir/server.log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${KAFKA_LOG_LEVEL:-WARN}
rootLogger.appenderRef.file.ref = file
# One line when the broker is up: infra.sh waits for it.
logger.started.name = kafka.server.KafkaRaftServer
logger.started.level = INFO
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    java -cp "$lib/*" -Dlog4j2.configurationFile="$dir/log4j2.properties" kafka.tools.StorageTool \
      format --ignore-formatted --cluster-id="$cluster" --config="$dir/server.properties" >"$dir/format.log" 2>&1 ||
      { cat "$dir/format.log" >&2; die "formatting $dir/data failed"; }
  fi
  # shellcheck disable=SC2086 # the heap options are a list of flags on purpose
  local jvm=(java ${KAFKA_HEAP_OPTS:--Xms256m -Xmx512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$dir/log4j2.properties"
    -cp "$lib/*" kafka.Kafka "$dir/server.properties")
  if [ "${KAFKA_WATCH_STDIN:-0}" = 1 ]; then
    "${jvm[@]}" </dev/null >>"$dir/stdout.log" 2>&1 &
    local jpid=$!
    echo "JAVA_PID $jpid"
    # stdin is a pipe from the test: when the test dies it closes, and the broker goes with it.
    # (An explicit <&0: a background command's stdin is /dev/null otherwise.)
    (cat >/dev/null; kill -KILL "$jpid" 2>/dev/null) <&0 &
    local watcher=$!
    local code=0
    wait "$jpid" || code=$?
    kill "$watcher" 2>/dev/null || true
    exit "$code"
  fi
  exec "${jvm[@]}" >>"$dir/stdout.log" 2>&1
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  libs) libs ;;
  run) run "$@" ;;
  *) sed -n '2,20p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
