#!/bin/sh
# The container's entry point: `role.sh ROLE` runs one role of the system (the image holds them all),
# compiled: node --enable-source-maps apps/ROLE/dist/main.js (`npm run build` writes dist/).
# ROLE: front, processor, archiver, router, connector, pusher, standalone; `migrate` runs the
# archive's MySQL migrations and exits.
set -eu
cd "$(dirname "$0")/.."
# Outside the image, on a machine whose node is older than 22: the Node scripts/lib/node.sh installed.
major="$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')"
if [ "${major:-0}" -lt 22 ] && [ -x .run/node/bin/node ]; then PATH="$PWD/.run/node/bin:$PATH"; fi
role="${1:-standalone}"
[ "$#" -gt 0 ] && shift
flags=""
case "$role" in
  connector)
    # A connector holds many idle connections. Two malloc arenas instead of one per thread keep
    # freed connection buffers from being spread (and kept) over many arenas; a 2 MB young
    # generation instead of up to 16 MB stops V8 from keeping tens of MB of it resident after a
    # burst of connects (idle memory per connection: see bench/RESULTS.md); --expose-gc lets it
    # run one compacting collection after a crowd comes or goes (apps/connector/src/core.ts reclaim()).
    export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
    flags="--expose-gc --max-semi-space-size=2"
    entry="apps/$role/dist/main.js" ;;
  standalone)
    # It embeds the connector (see above); its young generation stays V8's default for the front.
    export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
    flags="--expose-gc"
    entry="apps/$role/dist/main.js" ;;
  front | processor | archiver | router | pusher)
    entry="apps/$role/dist/main.js" ;;
  migrate)
    entry=apps/archiver/dist/migrate.js ;;
  *)
    echo "unknown role \"$role\": use front, processor, archiver, router, connector, pusher, standalone or migrate" >&2
    exit 64 ;;
esac
[ -f "$entry" ] || { echo "$entry is missing: run npm run build first" >&2; exit 70; }
# shellcheck disable=SC2086 # the flags are a list on purpose
exec node --enable-source-maps $flags "$entry" "$@"
