#!/usr/bin/env bash
# A throwaway local memcached for the shared-cache tests (loopback, non-default port).
#
#   scripts/memcached.sh start|stop|restart|status
#
# Environment: MEMCACHED_PORT (11290). Installs Debian's memcached when missing and run as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.memcached"
PORT="${MEMCACHED_PORT:-11290}"
PID_FILE="$STATE/memcached.pid"
LOG_FILE="$STATE/memcached.log"
NAME=memcached.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# memcached's text protocol over bash's /dev/tcp: "version" answers "VERSION 1.6.x".
ready() {
  (
    exec 3<>"/dev/tcp/127.0.0.1/$PORT"
    printf 'version\r\n' >&3
    read -r -t 2 reply <&3
    [[ "$reply" == VERSION* ]]
  ) 2>/dev/null
}

start() {
  ensure_command memcached memcached "$STATE/apt.log"
  mkdir -p "$STATE"
  # memcached refuses to run as root without -u: Debian's package adds the memcache user.
  local user=nobody
  id -u memcache >/dev/null 2>&1 && user=memcache
  # TCP on loopback only, no UDP, 64 MB; -v logs errors and warnings.
  start_in_background "$LOG_FILE" memcached --listen=127.0.0.1 --port="$PORT" --udp-port=0 \
    --memory-limit=64 --user="$user" -v
  wait_until_ready 50 0.1
  say "ready at pymemcache://127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
}

stop() { stop_started 5; }

service_main "$@"
