# shellcheck shell=bash
# Helpers to install Debian packages on demand. Sourced by infra.sh and
# kafka-broker.sh; not meant to be executed directly.
#
#   ensure_pkgs <command-or-file> <package> [<command-or-file> <package> ...]
#
# Each pair is checked: if the command is on PATH (or, for an absolute path,
# the file exists) nothing happens; otherwise the package is queued. All
# queued packages are installed with a single apt-get call. `apt-get update`
# runs at most once per process (it is slow and needs the network).

_APT_UPDATED=${_APT_UPDATED:-0}

# Run a command as root: directly if we are root, via sudo if available,
# otherwise fail loudly (we cannot install system packages).
_as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    echo "error: need root (or sudo) to run: $*" >&2
    echo "       install the missing packages manually and re-run." >&2
    return 1
  fi
}

_have() {
  case "$1" in
    /*) [ -e "$1" ] ;;
    *) command -v "$1" >/dev/null 2>&1 ;;
  esac
}

ensure_pkgs() {
  local missing=()
  while [ "$#" -ge 2 ]; do
    _have "$1" || missing+=("$2")
    shift 2
  done
  [ "${#missing[@]}" -eq 0 ] && return 0

  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null 2>&1; then
    echo "error: missing packages: ${missing[*]}" >&2
    echo "       installing them needs root or sudo; run as root:" >&2
    echo "       apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "installing missing packages: ${missing[*]}" >&2
  # Explicit `|| return 1`: callers may use us in a condition, where set -e
  # does not apply inside functions. apt's chatter goes to stderr: callers'
  # stdout is often captured as data (kafka-broker.sh prints a path).
  if [ "$_APT_UPDATED" != 1 ]; then
    _as_root apt-get update >&2 || return 1
    export _APT_UPDATED=1 # child scripts (kafka-broker.sh) skip it too
  fi
  # noninteractive: no debconf prompts (e.g. from mariadb-server) in scripts.
  _as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}" >&2 || return 1
}
