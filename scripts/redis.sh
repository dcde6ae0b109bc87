#!/usr/bin/env bash
# A throwaway local Redis for the shared-cache tests and benchmarks (loopback, non-default port).
#
#   scripts/redis.sh start|stop|restart|status
#
# Environment: REDIS_PORT (6390). Installs Debian's redis-server when missing and run as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.redis"
PORT="${REDIS_PORT:-6390}"
PID_FILE="$STATE/redis.pid"
LOG_FILE="$STATE/redis.log"
NAME=redis.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

ready() { redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; }

start() {
  ensure_command redis-server redis-server "$STATE/apt.log"
  mkdir -p "$STATE"
  # No persistence: a restart starts empty, like a cache should.
  start_in_background "$LOG_FILE" redis-server --port "$PORT" --bind 127.0.0.1 \
    --save "" --appendonly no --dir "$STATE" --daemonize no
  wait_until_ready 50 0.1
  say "ready at redis://127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"
}

stop() { stop_started 5; }

service_main "$@"
