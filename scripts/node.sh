#!/usr/bin/env bash
# `bash scripts/node.sh ARGS`: node ARGS on the repository's Node (scripts/lib/node.sh), from the
# repository root. The npm scripts that run a TypeScript tool use it (npm run token, config, load).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
exec node "$@"
