#!/usr/bin/env bash
# npm test: installs what is missing, starts Redis and MariaDB, fetches Apache Kafka once,
# type-checks, lints, builds and runs every test. Services it started are stopped again at the end.
# Tests run their TypeScript through tsx, the workspaces resolved to their sources (the "source"
# export condition); the roles they start run compiled (npm run build, done here first).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib/node.sh
bash scripts/ensure-deps.sh
# The page tests (packages/pages/test) drive Debian's Chromium; no browser is downloaded. The fonts
# make CJK and emoji comments show as text, not boxes; ffmpeg makes the test videos.
# shellcheck source=lib/apt.sh
. scripts/lib/apt.sh
ensure_pkgs /usr/bin/chromium chromium /usr/bin/ffmpeg ffmpeg \
  /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc fonts-noto-cjk \
  /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf fonts-noto-color-emoji
# promtool checks every role's /metrics (apps/standalone/test/observability/promtool.test.ts).
ensure_pkgs promtool prometheus

export DANMAKU_REDIS_PERSIST=0
# Stop at the end only what this run started: a developer's running services stay up.
already_up=$(bash scripts/infra.sh status | awk '$2 == "up" { print $1 }' | tr '\n' ' ')
bash scripts/infra.sh up redis mysql
started=""
for svc in redis mysql; do
  case " $already_up " in *" $svc "*) ;; *) started="$started $svc" ;; esac
done
[ -n "$started" ] && trap 'bash scripts/infra.sh down $started >/dev/null 2>&1 || true' EXIT
eval "$(bash scripts/infra.sh env)"
# Tests that need Kafka start brokers of their own (packages/testkit/src/kafka.ts); none may land
# on a shared one by accident. The broker's jars are fetched here once, not by tests racing.
unset KAFKA_BROKERS
bash scripts/kafka-broker.sh libs >/dev/null

# TEST_FILES="a.test.ts b.test.ts" runs only those (npm run test:fuzz, test:faults), without the
# type-check and lint of the whole tree.
if [ -n "${TEST_FILES:-}" ]; then
  read -r -a files <<< "$TEST_FILES"
else
  echo "== type-check"
  npx tsc -p tsconfig.json --noEmit
  echo "== lint"
  npx eslint .
  mapfile -t files < <(find apps packages bench scripts -path '*/node_modules' -prune -o -path '*/test/*' -name '*.test.ts' -print | sort)
fi
echo "== build"
bash scripts/build.sh
echo "== tests"
# No --test-force-exit: every test closes what it opened, so a file that does not end by itself
# (a socket, timer or child left open) fails by name instead of being hidden (hang-guard.mjs).
# The whole phase is bounded too (TESTS_LIMIT_S, 45 min; it takes about 10), should a hook hang.
timeout -s TERM -k 30 "${TESTS_LIMIT_S:-2700}" node --conditions=source --import tsx --import ./scripts/test/hang-guard.mjs --test --test-concurrency="${TEST_CONCURRENCY:-2}" --test-timeout=300000 "$@" "${files[@]}"

# The system suites last, one file at a time and alone on the machine: each runs a whole
# topology (start:split or start:cluster as a user starts them, or the fault suite's eleven role
# processes on a Redis Cluster, three Kafka brokers and a private MariaDB, killing parts of it),
# so it gets the cores to itself and longer than the 5 minutes of a test file.
# TEST_FAULTS=0 leaves them out (a developer's quick run); CI runs them.
if [ -z "${TEST_FILES:-}" ] && [ "${TEST_FAULTS:-1}" != "0" ]; then
  echo "== system suites: topologies and faults"
  mapfile -t faults < <(find apps -path '*/node_modules' -prune -o -path '*/test/*' -name '*.suite.ts' -print | sort)
  # One file at a time, each bounded (SUITE_LIMIT_S, 15 min; the longest takes about 5): a suite
  # that hangs fails by name and the others still run, instead of the whole run meeting CI's limit.
  failed=()
  for suite in "${faults[@]}"; do
    rc=0
    timeout -s TERM -k 30 "${SUITE_LIMIT_S:-900}" node --conditions=source --import tsx --import ./scripts/test/hang-guard.mjs --test --test-timeout=600000 "$@" "$suite" || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then echo "✖ $suite still running after ${SUITE_LIMIT_S:-900} s: stopped" >&2; fi
    [ "$rc" = 0 ] || failed+=("$suite")
  done
  if [ "${#failed[@]}" -gt 0 ]; then
    echo "✖ system suites failed: ${failed[*]}" >&2
    exit 1
  fi
fi
