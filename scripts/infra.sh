#!/usr/bin/env bash
# Local infrastructure for development and tests: Redis, MariaDB, Apache Kafka (one broker or a
# three-broker cluster) and a Redis Cluster, all listening on 127.0.0.1 only, all state under
# <repo>/.run/.
#
#   infra.sh up     [redis] [mysql] [kafka] [kafka-cluster] [redis-cluster]   start (default: redis mysql)
#   infra.sh down   [redis] [mysql] [kafka] [kafka-cluster] [redis-cluster]   stop  (default: all)
#   infra.sh status                           one line per service
#   infra.sh env                              export lines for running services
#                                             usage: eval "$(bash scripts/infra.sh env)"
#
# Idempotent: `up` on a running service and `down` on a stopped one are no-ops.
# `down` only stops processes this script started (tracked by pid files); a
# foreign server that already answers on a port is used but never stopped.
#
# Environment:
#   DANMAKU_REDIS_PORT     (16379)
#   DANMAKU_REDIS_PERSIST  (1)  0 = no RDB/AOF at all (tests: faster, nothing on disk)
#   DANMAKU_MYSQL_PORT     (13306)
#   DANMAKU_KAFKA_PORT     (19092)  kafka's client port; its controller listens on the next one
#   DANMAKU_KAFKA_CLUSTER_PORT (29092)  kafka-cluster's first client port of three (29092-29094);
#                          controllers on 29192-29194
#   DANMAKU_REDIS_CLUSTER_PORT (17000)  first of the six ports of redis-cluster
#                          (3 primaries + 3 replicas; cluster bus = port + 10000)
#
# Missing packages (redis-server, mariadb-server, Java 17, Maven) are installed with apt-get (as
# root, or via sudo); Kafka's jars come from Maven Central once (scripts/kafka-broker.sh).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN="$ROOT/.run"

REDIS_PORT="${DANMAKU_REDIS_PORT:-16379}"
REDIS_PERSIST="${DANMAKU_REDIS_PERSIST:-1}"
MYSQL_PORT="${DANMAKU_MYSQL_PORT:-13306}"
KAFKA_PORT="${DANMAKU_KAFKA_PORT:-19092}"
KCLUSTER_PORT="${DANMAKU_KAFKA_CLUSTER_PORT:-29092}"
CLUSTER_PORT="${DANMAKU_REDIS_CLUSTER_PORT:-17000}"

# Application credentials; the URLs printed by `env` use them.
DB_NAME=danmaku
DB_USER=danmaku
DB_PASS=danmaku

REDIS_PID="$RUN/redis.pid"
REDIS_PORT_FILE="$RUN/redis.port" # port of the managed instance (may differ from $REDIS_PORT)
MYSQL_PID="$RUN/mysql.pid"
MYSQL_PORT_FILE="$RUN/mysql.port"
MYSQL_SOCK="$RUN/mysql.sock"
MYSQL_DATA="$RUN/mysql"

# shellcheck source=lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

log() { echo "infra: $*" >&2; }
die() { echo "infra: error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- helpers

# pid_of <pidfile> <comm>: print the pid if the file names a live process whose
# executable name is <comm>. Checking the name guards against pid reuse after a
# reboot or crash (we must never signal an unrelated process). Zombies do not
# count: our daemons are reparented to PID 1, which in a container may reap
# them late (or never), leaving a dead "mariadbd" entry in /proc.
pid_of() {
  local file="$1" comm="$2" pid state
  [ -s "$file" ] || return 1
  pid="$(tr -dc '0-9' <"$file")"
  [ -n "$pid" ] && [ -r "/proc/$pid/comm" ] || return 1
  [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$comm" ] || return 1
  # Field 3 of /proc/PID/stat is the state; the name field before it is in
  # parentheses, so cut after the last ')'.
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)"
  case "$state" in Z | X | "") return 1 ;; esac
  echo "$pid"
}

# running <pid>: the process exists and is not a zombie.
running() {
  local state
  state="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)"
  case "$state" in Z | X | "") return 1 ;; esac
}

# alive <pid> <comm>: like pid_of, for a known pid.
alive() {
  [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ] && running "$1"
}

# stop_pid <pid> <comm> <timeout-seconds>: SIGTERM (graceful for all three
# servers), wait, then SIGKILL as a last resort. (kill -0 would also succeed
# on a zombie, hence alive.)
stop_pid() {
  local pid="$1" name="$2" timeout="$3" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < timeout * 10; i++)); do
    alive "$pid" "$name" || return 0
    sleep 0.1
  done
  log "$name (pid $pid) did not stop within ${timeout}s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
}

# stop_managed NAME PIDFILE COMM TIMEOUT: stops the server infra.sh started for
# NAME, if one runs; a server it did not start is never touched.
stop_managed() {
  local pid
  if pid="$(pid_of "$2" "$3")"; then
    stop_pid "$pid" "$3" "$4"
    log "$1 stopped"
  else
    log "$1: not started by infra.sh (nothing to stop)"
  fi
}

# port_open <port>: something accepts TCP connections on 127.0.0.1:<port>.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# managed_port <portfile> <default>: the port recorded when we started the
# service; falls back to the configured one for instances started before
# port files existed.
managed_port() {
  if [ -s "$1" ]; then tr -dc '0-9' <"$1"; else echo "$2"; fi
}

# managed_pid NAME PIDFILE COMM PORTFILE PORT: sets the caller's `pid` to the
# server infra.sh manages for NAME ("" when none runs). One managed instance at
# a time (one pid file, one data dir): dies rather than silently start a second
# one on another port and lose track of the first. It assigns instead of
# printing because `die` inside $(...) would only end the subshell.
managed_pid() {
  local port
  pid="$(pid_of "$2" "$3")" || { pid=""; return 0; }
  port="$(managed_port "$4" "$5")"
  [ "$port" = "$5" ] ||
    die "infra.sh already runs $1 on port $port (pid $pid); 'infra.sh down $1' first to use port $5"
}

mariadbd_bin() {
  command -v mariadbd 2>/dev/null || { [ -x /usr/sbin/mariadbd ] && echo /usr/sbin/mariadbd; } || true
}

# --------------------------------------------------------------------- redis

# redis_ping [port]
redis_ping() {
  command -v redis-cli >/dev/null 2>&1 || return 1
  [ "$(redis-cli -h 127.0.0.1 -p "${1:-$REDIS_PORT}" ping 2>/dev/null)" = "PONG" ]
}

redis_up() {
  local pid
  managed_pid redis "$REDIS_PID" redis-server "$REDIS_PORT_FILE" "$REDIS_PORT"
  if redis_ping; then
    if [ -n "$pid" ]; then
      log "redis already up on 127.0.0.1:$REDIS_PORT"
    else
      log "redis: something already answers PING on 127.0.0.1:$REDIS_PORT; using it (not managed by infra.sh)"
    fi
    return 0
  fi
  # 9>&- (see the lock in main): Debian's postinst may start the system
  # service, which must not inherit our lock.
  ensure_pkgs redis-server redis-server redis-cli redis-tools 9>&-
  if port_open "$REDIS_PORT"; then
    die "port $REDIS_PORT is taken by something that is not Redis; set DANMAKU_REDIS_PORT"
  fi

  mkdir -p "$RUN/redis"
  rm -f "$REDIS_PID"
  echo "$REDIS_PORT" >"$REDIS_PORT_FILE"
  local persist=()
  if [ "$REDIS_PERSIST" = 0 ]; then
    # Tests: nothing written to disk and an empty dataset at start. The RDB
    # file gets its own name: Redis loads dump.rdb at startup even with
    # `--save ''`, which would hand the persistent dev dataset to the tests.
    rm -f "$RUN/redis/ephemeral.rdb"
    persist=(--save '' --appendonly no --dbfilename ephemeral.rdb)
  else
    # npm start: the append-only file survives restarts (fsync once a second,
    # Redis' default trade-off); the RDB snapshot defaults stay on too.
    persist=(--appendonly yes --appendfsync everysec)
  fi
  # No config file: every setting is on the command line, so the system's
  # /etc/redis/redis.conf (and its service on 6379) is irrelevant.
  redis-server \
    --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
    --daemonize yes --pidfile "$REDIS_PID" \
    --dir "$RUN/redis" --logfile "$RUN/redis.log" \
    "${persist[@]}" 9>&-

  local i
  for ((i = 0; i < 200; i++)); do # 20 s
    redis_ping && { log "redis up on 127.0.0.1:$REDIS_PORT (persist=$REDIS_PERSIST)"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$RUN/redis.log" >&2 2>/dev/null || true
  die "redis did not answer PING on 127.0.0.1:$REDIS_PORT within 20s (log: $RUN/redis.log)"
}

redis_down() {
  # SIGTERM = graceful SHUTDOWN (flushes the AOF / writes the RDB if enabled).
  stop_managed redis "$REDIS_PID" redis-server 20
  rm -f "$REDIS_PID" "$REDIS_PORT_FILE"
}

# redis_url: the URL of the managed instance if any, else of whatever answers
# on the configured port; fails when neither answers.
redis_url() {
  local port=$REDIS_PORT
  pid_of "$REDIS_PID" redis-server >/dev/null && port="$(managed_port "$REDIS_PORT_FILE" "$REDIS_PORT")"
  redis_ping "$port" && echo "redis://127.0.0.1:$port"
}

redis_status() {
  local pid url
  if pid="$(pid_of "$REDIS_PID" redis-server)"; then
    if url="$(redis_url)"; then
      echo "redis  up    ${url#redis://}  pid $pid"
    else
      echo "redis  unhealthy  pid $pid, no PONG (log: $RUN/redis.log)"
    fi
  elif url="$(redis_url)"; then
    echo "redis  up    ${url#redis://}  (external, not managed)"
  else
    echo "redis  down  127.0.0.1:$REDIS_PORT"
  fi
}

# --------------------------------------------------------------------- mysql

# Superuser for bootstrap SQL. mariadb-install-db creates root@localhost with
# unix_socket auth plus the same for the OS user it is told to run as, so the
# current OS user can always log in over our private socket without a password.
mysql_admin() {
  mariadb --no-defaults --socket="$MYSQL_SOCK" --user="$(id -un)" "$@"
}

# The application account over TCP: what the services will actually use.
# mysql_app_ok [port]
mysql_app_ok() {
  command -v mariadb >/dev/null 2>&1 || return 1
  mariadb --no-defaults --protocol=TCP --host=127.0.0.1 --port="${1:-$MYSQL_PORT}" \
    --user="$DB_USER" --password="$DB_PASS" --connect-timeout=2 \
    --batch --skip-column-names -e 'SELECT 1' "$DB_NAME" >/dev/null 2>&1
}

mysql_bootstrap_sql() {
  # Idempotent. One user at both hosts: 127.0.0.1 for TCP (we run with
  # skip-name-resolve, so TCP logins only match IP hosts) and localhost for the
  # socket. ALL ON *.* because tests create their own danmaku_test_* databases.
  mysql_admin <<SQL
CREATE DATABASE IF NOT EXISTS \`$DB_NAME\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON *.* TO '$DB_USER'@'localhost';
FLUSH PRIVILEGES;
SQL
}

mysql_up() {
  local pid
  managed_pid mysql "$MYSQL_PID" mariadbd "$MYSQL_PORT_FILE" "$MYSQL_PORT"
  if [ -n "$pid" ]; then
    # Running but maybe still starting (crash recovery) or shutting down:
    # wait for it to answer or to go away.
    local i
    for ((i = 0; i < 600; i++)); do # 60 s
      if mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then
        mysql_bootstrap_sql # cheap; repairs the account if someone dropped it
        log "mysql already up on 127.0.0.1:$MYSQL_PORT"
        return 0
      fi
      alive "$pid" mariadbd || break
      sleep 0.1
    done
    alive "$pid" mariadbd &&
      die "mariadbd (pid $pid) is running but does not answer on $MYSQL_SOCK within 60s (log: $RUN/mysql.log)"
  fi
  if port_open "$MYSQL_PORT"; then
    if mysql_app_ok; then
      log "mysql: a server on 127.0.0.1:$MYSQL_PORT accepts $DB_USER/$DB_PASS; using it (not managed by infra.sh)"
      return 0
    fi
    die "port $MYSQL_PORT is taken by something we cannot log in to as $DB_USER; set DANMAKU_MYSQL_PORT"
  fi

  # /usr/sbin may be missing from a non-root PATH, hence the absolute path.
  ensure_pkgs /usr/sbin/mariadbd mariadb-server mariadb-install-db mariadb-server mariadb mariadb-client 9>&-
  local mariadbd
  mariadbd="$(mariadbd_bin)"
  [ -n "$mariadbd" ] || die "mariadbd not found after installing mariadb-server"

  mkdir -p "$RUN"
  rm -f "$MYSQL_PID" # stale after a crash; mariadbd rewrites it
  echo "$MYSQL_PORT" >"$MYSQL_PORT_FILE"
  # mariadbd refuses to run as root unless told to; as any other user --user
  # is meaningless (and warns), so pass it only for root.
  local as_user=()
  [ "$(id -u)" -eq 0 ] && as_user=(--user=root)

  if [ ! -d "$MYSQL_DATA/mysql" ]; then
    log "mysql: initializing $MYSQL_DATA"
    mkdir -p "$MYSQL_DATA"
    # --no-defaults everywhere: ignore /etc/mysql/*.cnf (system datadir,
    # socket, port) so this instance never touches the system one.
    mariadb-install-db --no-defaults --datadir="$MYSQL_DATA" --user="$(id -un)" \
      --skip-test-db >>"$RUN/mysql.log" 2>&1 ||
      { tail -n 30 "$RUN/mysql.log" >&2; die "mariadb-install-db failed (log: $RUN/mysql.log)"; }
  fi

  # Started detached (setsid + nohup, stdin from /dev/null) so it outlives this
  # script and the terminal. Small buffers: this is a dev/test box.
  # innodb_flush_log_at_trx_commit=2: fsync the redo log once a second rather
  # than per commit; a mariadbd crash loses nothing, an OS crash up to ~1 s.
  setsid nohup "$mariadbd" --no-defaults "${as_user[@]}" \
    --datadir="$MYSQL_DATA" \
    --socket="$MYSQL_SOCK" \
    --pid-file="$MYSQL_PID" \
    --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --skip-name-resolve \
    --log-error="$RUN/mysql.log" \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci \
    --innodb-buffer-pool-size=64M \
    --innodb-log-file-size=32M \
    --innodb-flush-log-at-trx-commit=2 \
    --key-buffer-size=8M \
    --performance-schema=OFF \
    --max-connections=300 \
    </dev/null >>"$RUN/mysql.log" 2>&1 9>&- &
  local launched=$!

  local i
  for ((i = 0; i < 600; i++)); do # 60 s
    if mysql_admin -e 'SELECT 1' >/dev/null 2>&1; then
      mysql_bootstrap_sql
      mysql_app_ok || die "mysql is up but $DB_USER cannot log in over TCP (log: $RUN/mysql.log)"
      log "mysql up on 127.0.0.1:$MYSQL_PORT (datadir $MYSQL_DATA)"
      return 0
    fi
    # Not `alive ... mariadbd`: right after the fork the process may still be
    # named setsid or nohup.
    if ! running "$launched"; then
      tail -n 30 "$RUN/mysql.log" >&2
      die "mariadbd exited during startup (log: $RUN/mysql.log)"
    fi
    sleep 0.1
  done
  tail -n 30 "$RUN/mysql.log" >&2
  die "mysql did not answer a query within 60s (log: $RUN/mysql.log)"
}

mysql_down() {
  # SIGTERM = clean shutdown (InnoDB flushes; next start needs no recovery).
  stop_managed mysql "$MYSQL_PID" mariadbd 60
  rm -f "$MYSQL_PID" "$MYSQL_PORT_FILE"
}

# mysql_url: like redis_url.
mysql_url() {
  local port=$MYSQL_PORT
  pid_of "$MYSQL_PID" mariadbd >/dev/null && port="$(managed_port "$MYSQL_PORT_FILE" "$MYSQL_PORT")"
  port_open "$port" && mysql_app_ok "$port" && echo "mysql://$DB_USER:$DB_PASS@127.0.0.1:$port/$DB_NAME"
}

mysql_status() {
  local pid url
  if pid="$(pid_of "$MYSQL_PID" mariadbd)"; then
    if url="$(mysql_url)"; then
      url="${url##*@}"
      echo "mysql  up    ${url%%/*}  pid $pid"
    else
      echo "mysql  starting/unhealthy  pid $pid (log: $RUN/mysql.log)"
    fi
  elif url="$(mysql_url)"; then
    url="${url##*@}"
    echo "mysql  up    ${url%%/*}  (external, not managed)"
  else
    echo "mysql  down  127.0.0.1:$MYSQL_PORT"
  fi
}

# --------------------------------------------------------------------- kafka
# Apache Kafka in KRaft mode (scripts/kafka-broker.sh): `kafka` is one broker that is also the
# controller; `kafka-cluster` is three, each broker and controller (a three-voter quorum), whose
# topics are replicated three times with min.insync.replicas=2. Data in .run/kafka/ and
# .run/kafka-cluster/; logs .run/kafka.log and .run/kafka-cluster-N.log. The project creates its
# topics itself through the admin API when a role starts.

KAFKA_DIR="$RUN/kafka"
KCLUSTER_DIR="$RUN/kafka-cluster"

kafka_ports() { # kafka_ports NAME -> "client controller" per broker, one line each
  if [ "$1" = kafka ]; then
    echo "$KAFKA_PORT $((KAFKA_PORT + 1))"
  else
    local i
    for ((i = 0; i < 3; i++)); do echo "$((KCLUSTER_PORT + i)) $((KCLUSTER_PORT + 100 + i))"; done
  fi
}

# kafka_start NAME DIR: starts the brokers of NAME that are not running and waits for all.
kafka_start() {
  local name="$1" dir="$2" voters="" id=0 client ctrl cid pid
  bash "$ROOT/scripts/kafka-broker.sh" libs >/dev/null 9>&-
  mkdir -p "$dir"
  [ -s "$dir/cluster.id" ] || head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n' >"$dir/cluster.id"
  cid="$(cat "$dir/cluster.id")"
  while read -r client ctrl; do id=$((id + 1)); voters="$voters${voters:+,}$id@127.0.0.1:$ctrl"; done < <(kafka_ports "$name")
  id=0
  local started=()
  while read -r client ctrl; do
    id=$((id + 1))
    local log="$RUN/$name.log"
    [ "$name" = kafka-cluster ] && log="$RUN/kafka-cluster-$id.log"
    if pid_of "$dir/broker-$id.pid" java >/dev/null; then continue; fi
    port_open "$client" && die "port $client is taken by something infra.sh did not start; set DANMAKU_KAFKA_PORT / DANMAKU_KAFKA_CLUSTER_PORT"
    port_open "$ctrl" && die "controller port $ctrl is taken; set DANMAKU_KAFKA_PORT / DANMAKU_KAFKA_CLUSTER_PORT"
    : >"$log"
    KAFKA_LOG_FILE="$log" setsid nohup bash "$ROOT/scripts/kafka-broker.sh" run "$dir/broker-$id" "$id" "$client" "$ctrl" "$voters" "$cid" </dev/null >/dev/null 2>>"$log" 9>&- &
    echo $! >"$dir/broker-$id.pid"
    started+=("$id:$client:$log")
  done < <(kafka_ports "$name")
  local i entry
  for entry in "${started[@]}"; do
    IFS=: read -r id client log <<<"$entry"
    for ((i = 0; i < 600; i++)); do # 60 s
      grep -q "Kafka Server started" "$log" 2>/dev/null && port_open "$client" && break
      # Right after the fork the process may still be named setsid, nohup or bash.
      running "$(cat "$dir/broker-$id.pid")" ||
        { tail -n 20 "$log" >&2; die "$name broker $id exited during start-up (log: $log)"; }
      sleep 0.1
    done
    grep -q "Kafka Server started" "$log" || die "$name broker $id did not start within 60s (log: $log)"
  done
  log "$name up at $(kafka_brokers "$name") (Apache Kafka $(basename "$(dirname "$(bash "$ROOT/scripts/kafka-broker.sh" libs)")"), KRaft)"
}

kafka_brokers() {
  local client ctrl out=""
  while read -r client ctrl; do out="$out${out:+,}127.0.0.1:$client"; done < <(kafka_ports "$1")
  echo "$out"
}

# kafka_running NAME DIR: every broker of NAME runs.
kafka_running() {
  local n id
  n="$(kafka_ports "$1" | wc -l)"
  for ((id = 1; id <= n; id++)); do pid_of "$2/broker-$id.pid" java >/dev/null || return 1; done
}

kafka_stop() {
  local name="$1" dir="$2" n id pid any=0
  n="$(kafka_ports "$name" | wc -l)"
  # Controlled shutdown hands partition leadership over first; the last broker may wait for a
  # quorum that is gone, hence the SIGKILL after 30 s.
  for ((id = 1; id <= n; id++)); do
    if pid="$(pid_of "$dir/broker-$id.pid" java)"; then kill -TERM "$pid" 2>/dev/null || true; any=1; fi
  done
  for ((id = 1; id <= n; id++)); do
    if pid="$(pid_of "$dir/broker-$id.pid" java)"; then stop_pid "$pid" java 30; fi
    rm -f "$dir/broker-$id.pid"
  done
  [ "$any" = 1 ] && log "$name stopped" || log "$name: not started by infra.sh (nothing to stop)"
}

kafka_status_line() {
  local name="$1" dir="$2" n id pids=""
  n="$(kafka_ports "$name" | wc -l)"
  for ((id = 1; id <= n; id++)); do pids="$pids $(pid_of "$dir/broker-$id.pid" java || echo -)"; done
  if kafka_running "$name" "$dir"; then
    echo "$name  up    $(kafka_brokers "$name")  pids$pids"
  elif [ -n "$(tr -d ' -' <<<"$pids")" ]; then
    echo "$name  partly up  $(kafka_brokers "$name")  pids$pids (logs: $RUN/$name*.log)"
  else
    echo "$name  down  $(kafka_brokers "$name")"
  fi
}

kafka_up() { kafka_start kafka "$KAFKA_DIR"; }
kafka_down() { kafka_stop kafka "$KAFKA_DIR"; }
kafka_status() { kafka_status_line kafka "$KAFKA_DIR"; }
kafka-cluster_up() { kafka_start kafka-cluster "$KCLUSTER_DIR"; }
kafka-cluster_down() { kafka_stop kafka-cluster "$KCLUSTER_DIR"; }
kafka-cluster_status() { kafka_status_line kafka-cluster "$KCLUSTER_DIR"; }

# ------------------------------------------------------------- redis-cluster
# Six redis-server processes on loopback (3 primaries + 3 replicas), made a
# cluster with redis-cli --cluster create. State in .run/redis-cluster/PORT/.

CLUSTER_DIR="$RUN/redis-cluster"

cluster_ports() {
  local i
  for ((i = 0; i < 6; i++)); do echo $((CLUSTER_PORT + i)); done
}

cluster_ok() {
  redis-cli -h 127.0.0.1 -p "$CLUSTER_PORT" cluster info 2>/dev/null | grep -q '^cluster_state:ok'
}

redis-cluster_up() {
  ensure_pkgs redis-server redis-server redis-cli redis-tools 9>&-
  local port persist=() fresh=0
  if [ "$REDIS_PERSIST" = 0 ]; then persist=(--save '' --appendonly no); else persist=(--appendonly yes --appendfsync everysec); fi
  for port in $(cluster_ports); do
    if pid_of "$CLUSTER_DIR/$port/redis.pid" redis-server >/dev/null; then continue; fi
    port_open "$port" && die "port $port is taken; set DANMAKU_REDIS_CLUSTER_PORT"
    port_open $((port + 10000)) && die "cluster bus port $((port + 10000)) is taken; set DANMAKU_REDIS_CLUSTER_PORT"
    mkdir -p "$CLUSTER_DIR/$port"
    [ -s "$CLUSTER_DIR/$port/nodes.conf" ] || fresh=1
    redis-server --bind 127.0.0.1 --port "$port" --protected-mode yes \
      --daemonize yes --pidfile "$CLUSTER_DIR/$port/redis.pid" \
      --dir "$CLUSTER_DIR/$port" --logfile "$CLUSTER_DIR/$port/redis.log" \
      --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --repl-diskless-sync-delay 0 "${persist[@]}" 9>&-
  done
  local i
  for port in $(cluster_ports); do
    for ((i = 0; i < 100; i++)); do redis_ping "$port" && break; sleep 0.1; done
    redis_ping "$port" || die "cluster node $port did not answer PING (log: $CLUSTER_DIR/$port/redis.log)"
  done
  if ! cluster_ok; then
    if [ "$fresh" = 1 ] || ! redis-cli -p "$CLUSTER_PORT" cluster info | grep -q 'cluster_known_nodes:6'; then
      local nodes=()
      for port in $(cluster_ports); do nodes+=("127.0.0.1:$port"); done
      redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$RUN/redis-cluster.create.log" 2>&1 ||
        { tail -n 20 "$RUN/redis-cluster.create.log" >&2; die "redis-cli --cluster create failed"; }
    fi
    for ((i = 0; i < 200; i++)); do cluster_ok && break; sleep 0.1; done
    cluster_ok || die "redis cluster did not reach cluster_state:ok within 20s"
  fi
  log "redis-cluster up on 127.0.0.1:$CLUSTER_PORT-$((CLUSTER_PORT + 5)) (3 primaries + 3 replicas)"
}

redis-cluster_down() {
  local port pid any=0
  for port in $(cluster_ports); do
    if pid="$(pid_of "$CLUSTER_DIR/$port/redis.pid" redis-server)"; then
      stop_pid "$pid" redis-server 20
      any=1
    fi
    rm -f "$CLUSTER_DIR/$port/redis.pid"
  done
  if [ "$REDIS_PERSIST" = 0 ]; then rm -rf "$CLUSTER_DIR"; fi
  [ "$any" = 1 ] && log "redis-cluster stopped" || log "redis-cluster: not started by infra.sh (nothing to stop)"
}

redis-cluster_seeds() {
  local port seeds=""
  pid_of "$CLUSTER_DIR/$CLUSTER_PORT/redis.pid" redis-server >/dev/null || return 1
  cluster_ok || return 1
  for port in $(cluster_ports); do seeds="$seeds${seeds:+,}127.0.0.1:$port"; done
  echo "$seeds"
}

redis-cluster_status() {
  local seeds
  if seeds="$(redis-cluster_seeds)"; then
    echo "redis-cluster  up    $seeds"
  else
    echo "redis-cluster  down  127.0.0.1:$CLUSTER_PORT-$((CLUSTER_PORT + 5))"
  fi
}

# ---------------------------------------------------------------------- main

print_env() {
  local url
  url="$(redis_url)" && echo "export REDIS_URL=$url"
  url="$(mysql_url)" && echo "export MYSQL_URL=$url"
  kafka_running kafka "$KAFKA_DIR" && echo "export KAFKA_BROKERS=$(kafka_brokers kafka)"
  kafka_running kafka-cluster "$KCLUSTER_DIR" && echo "export KAFKA_CLUSTER_BROKERS=$(kafka_brokers kafka-cluster)"
  local seeds
  seeds="$(redis-cluster_seeds)" && echo "export REDIS_CLUSTER_NODES=$seeds"
  return 0
}

usage() {
  sed -n '2,25p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# check_names <name...>: reject anything but the services above.
check_names() {
  local n
  for n in "$@"; do
    case "$n" in redis | mysql | kafka | kafka-cluster | redis-cluster) ;; *) die "unknown service '$n' (want redis, mysql, kafka, kafka-cluster or redis-cluster)" ;; esac
  done
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
  up | down)
    if [ $# -eq 0 ]; then
      if [ "$cmd" = up ]; then set -- redis mysql; else set -- redis mysql kafka kafka-cluster redis-cluster; fi
    fi
    check_names "$@"
    mkdir -p "$RUN"
    # Serialize concurrent invocations (two terminals, parallel test scripts):
    # two simultaneous `up mysql` would otherwise both initialize the datadir.
    # Every daemon is started with `9>&-`: a server inheriting fd 9 would hold
    # this lock for its whole life and deadlock the next invocation.
    exec 9>"$RUN/infra.lock"
    flock 9
    for svc in "$@"; do "${svc}_$cmd"; done
    ;;
  status)
    redis_status
    mysql_status
    kafka_status
    kafka-cluster_status
    redis-cluster_status
    ;;
  env) print_env ;;
  *) usage ;;
esac
