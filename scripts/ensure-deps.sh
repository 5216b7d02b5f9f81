#!/usr/bin/env bash
# Installs the npm dependencies (with the repository's Node, scripts/lib/node.sh) when
# node_modules is missing or older than the lock file, and rebuilds installed packages' native
# parts when Node's ABI changed since (today none has one: esbuild's binary is Go, not a Node addon).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
abi="node_modules/.node-abi"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "== installing npm dependencies"
  npm ci --no-audit --no-fund
  node -p process.versions.modules >"$abi"
elif [ "$(cat "$abi" 2>/dev/null)" != "$(node -p process.versions.modules)" ]; then
  echo "== Node's ABI changed since the install ($(cat "$abi" 2>/dev/null || echo unknown) -> $(node -p process.versions.modules)): npm rebuild"
  npm rebuild
  node -p process.versions.modules >"$abi"
fi
