#!/bin/sh
# The container's entry point: `role.sh ROLE` runs one role of the system (the image holds them all).
# ROLE: front, processor, archiver, router, connector, pusher, standalone; `migrate` runs the
# archive's MySQL migrations and exits.
set -eu
cd "$(dirname "$0")/.."
role="${1:-standalone}"
[ "$#" -gt 0 ] && shift
case "$role" in
  front | processor | archiver | router | connector | pusher | standalone)
    exec node --import tsx "apps/$role/src/main.ts" "$@" ;;
  migrate)
    exec node --import tsx apps/archiver/src/migrate.ts "$@" ;;
  *)
    echo "unknown role \"$role\": use front, processor, archiver, router, connector, pusher, standalone or migrate" >&2
    exit 64 ;;
esac
