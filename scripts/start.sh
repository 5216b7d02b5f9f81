#!/usr/bin/env bash
# npm start: the standalone system (every role, in-memory bus) on http://127.0.0.1:${PORT:-8080},
# after installing and starting Redis and MariaDB when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
bash scripts/infra.sh up redis mysql
eval "$(bash scripts/infra.sh env)"
# As scripts/role.sh runs the roles that hold long connections.
export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
exec node --expose-gc --import tsx apps/standalone/src/main.ts
