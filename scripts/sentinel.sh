#!/usr/bin/env bash
# A Redis primary, its replica and one Sentinel watching them (loopback, non-default ports), for
# the failover fault of the fault run (scripts/soak.sh --sentinel): the token cache on
# django-redis's SentinelClient, the primary killed, the replica promoted.
#
#   scripts/sentinel.sh start|stop|status|primary
#
# "primary" prints the port of the current primary, as the Sentinel reports it.
# Environment: SENTINEL_PORT (26390), SENTINEL_REDIS_PORTS ("6392 6393": the first starts as the
# primary). Installs Debian's redis-sentinel when missing and run as root.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.sentinel"
SENTINEL_PORT="${SENTINEL_PORT:-26390}"
read -r -a REDIS_PORTS <<<"${SENTINEL_REDIS_PORTS:-6392 6393}"
PRIMARY_NAME=deploy
NAME=sentinel.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# use PORT: point lib.sh's PID_FILE, LOG_FILE and PORT at the server on that port.
use() {
  PORT="$1"
  PID_FILE="$STATE/$PORT.pid"
  LOG_FILE="$STATE/$PORT.log"
}

ready() { redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; }

primary() {
  redis-cli -p "$SENTINEL_PORT" sentinel get-master-addr-by-name "$PRIMARY_NAME" | tail -n 1
}

start() {
  ensure_command redis-server redis-server "$STATE/apt.log"
  ensure_command redis-sentinel redis-sentinel "$STATE/apt.log"
  mkdir -p "$STATE"
  local port primary_port="${REDIS_PORTS[0]}"
  for port in "${REDIS_PORTS[@]}"; do
    use "$port"
    local replica=()
    [ "$port" = "$primary_port" ] || replica=(--replicaof 127.0.0.1 "$primary_port")
    # No persistence, like scripts/redis.sh: a killed primary's writes not yet replicated are lost.
    start_in_background "$LOG_FILE" redis-server --port "$port" --bind 127.0.0.1 --save "" \
      --appendonly no --dir "$STATE" --daemonize no "${replica[@]}"
    wait_until_ready 50 0.1
  done
  use "$SENTINEL_PORT"
  # A Sentinel rewrites its config file: a fresh one each start. Quorum 1 (one Sentinel);
  # the primary is declared down after 1 s.
  cat >"$STATE/sentinel.conf" <<CONF
port $SENTINEL_PORT
bind 127.0.0.1
dir $STATE
sentinel monitor $PRIMARY_NAME 127.0.0.1 $primary_port 1
sentinel down-after-milliseconds $PRIMARY_NAME 1000
sentinel failover-timeout $PRIMARY_NAME 5000
CONF
  start_in_background "$LOG_FILE" redis-sentinel "$STATE/sentinel.conf"
  wait_until_ready 50 0.1
  say "ready: primary $PRIMARY_NAME on port $primary_port, replica ${REDIS_PORTS[*]:1}, Sentinel on $SENTINEL_PORT"
}

stop() {
  local port
  for port in "$SENTINEL_PORT" "${REDIS_PORTS[@]}"; do use "$port"; stop_started 5; done
}

case "${1:-}" in
  start) use "$SENTINEL_PORT"
         if pid="$(running_pid)"; then say "already running (pid $pid)"; else start; fi ;;
  stop) stop ;;
  status) use "$SENTINEL_PORT"
          if pid="$(running_pid)"; then echo "running (pid $pid); primary on port $(primary)"; else echo "not running"; exit 3; fi ;;
  primary) primary ;;
  *) echo "usage: $0 start|stop|status|primary" >&2; exit 2 ;;
esac
