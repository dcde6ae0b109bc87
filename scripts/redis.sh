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

ping() { redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; }

start() {
  if pid="$(running_pid)"; then say "already running (pid $pid) on port $PORT"; return 0; fi
  ensure_command redis-server redis-server "$STATE/apt.log"
  mkdir -p "$STATE"
  # No persistence: a restart starts empty, like a cache should.
  start_in_background "$LOG_FILE" redis-server --port "$PORT" --bind 127.0.0.1 \
    --save "" --appendonly no --dir "$STATE" --daemonize no
  for _ in $(seq 1 50); do
    ping && { say "ready at redis://127.0.0.1:$PORT (pid $(cat "$PID_FILE"))"; return 0; }
    sleep 0.1
  done
  tail -n 20 "$LOG_FILE" >&2 || true
  die "redis-server did not answer on port $PORT"
}

stop() { stop_started 5; }

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) if pid="$(running_pid)"; then echo "running (pid $pid) on port $PORT"; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
