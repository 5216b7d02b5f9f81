#!/bin/sh
# The container's entry point: `role.sh ROLE` runs one role of the system (the image holds them all).
# ROLE: front, processor, archiver, router, connector, pusher, standalone; `migrate` runs the
# archive's MySQL migrations and exits.
set -eu
cd "$(dirname "$0")/.."
role="${1:-standalone}"
[ "$#" -gt 0 ] && shift
case "$role" in
  connector)
    # A connector holds many idle connections. Two malloc arenas instead of one per thread keep
    # freed connection buffers from being spread (and kept) over many arenas; a 2 MB young
    # generation instead of up to 16 MB stops V8 from keeping tens of MB of it resident after a
    # burst of connects (idle memory per connection: see README, Benches); --expose-gc lets it
    # run one compacting collection after a crowd comes or goes (apps/connector/src/core.ts reclaim()).
    export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
    exec node --expose-gc --max-semi-space-size=2 --import tsx "apps/$role/src/main.ts" "$@" ;;
  standalone)
    # It embeds the connector (see above); its young generation stays V8's default for the front.
    export MALLOC_ARENA_MAX="${MALLOC_ARENA_MAX:-2}"
    exec node --expose-gc --import tsx "apps/$role/src/main.ts" "$@" ;;
  front | processor | archiver | router | pusher)
    exec node --import tsx "apps/$role/src/main.ts" "$@" ;;
  migrate)
    exec node --import tsx apps/archiver/src/migrate.ts "$@" ;;
  *)
    echo "unknown role \"$role\": use front, processor, archiver, router, connector, pusher, standalone or migrate" >&2
    exit 64 ;;
esac
