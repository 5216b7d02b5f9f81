#!/usr/bin/env bash
# Build the librdkafka-based mock Kafka broker into <repo>/.run/bin/mock-broker.
#
# Rebuilds only when the C source is newer than the binary, so it is cheap to
# call before every test run. Installs gcc / librdkafka-dev when missing.
# Prints the binary path on stdout (everything else goes to stderr).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/scripts/kafka-mock/mock-broker.c"
OUT="$ROOT/.run/bin/mock-broker"

# shellcheck source=lib/apt.sh
. "$ROOT/scripts/lib/apt.sh"

if [ -x "$OUT" ] && [ "$OUT" -nt "$SRC" ]; then
  echo "$OUT"
  exit 0
fi

# rdkafka_mock.h ships in Debian's librdkafka-dev (bookworm: 2.0.2).
ensure_pkgs gcc gcc /usr/include/stdio.h libc6-dev /usr/include/librdkafka/rdkafka_mock.h librdkafka-dev

mkdir -p "$(dirname "$OUT")"
# Compile to a temp name and rename, so a concurrent caller (two test files
# starting at once) never executes a half-written binary.
TMP="$OUT.tmp.$$"
trap 'rm -f "$TMP"' EXIT
gcc -O2 -Wall -Wextra -o "$TMP" "$SRC" -lrdkafka >&2
mv -f "$TMP" "$OUT"
echo "built $OUT" >&2
echo "$OUT"
