#!/usr/bin/env bash
# npm run build: compiles every workspace's src/ into its dist/ (tsc -b over tsconfig.build.json:
# project references, incremental, so only what changed is compiled again), then bundles the
# browser code the front serves into packages/pages/dist/bundles (packages/pages/src/bundle.ts).
# Roles run the result: node --enable-source-maps apps/<role>/dist/main.js.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/node.sh
bash scripts/ensure-deps.sh
npx tsc -b tsconfig.build.json
node --input-type=module -e "await (await import('./packages/pages/dist/bundle.js')).writeBundles('packages/pages/dist/bundles')"
