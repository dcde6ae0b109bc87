# Shared by scripts/keycloak.sh and scripts/redis.sh (sourced, not run). Each service runs in its
# own session (setsid) with its PID in a file, so it can be stopped whole and only by us.
# Needs: NAME (for messages), PID_FILE.

say() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { say "$*"; exit 1; }

running_pid() {
  [ -f "$PID_FILE" ] || return 1
  local pid; pid="$(cat "$PID_FILE")"
  kill -0 "$pid" 2>/dev/null && echo "$pid"
}

# start_in_background LOG COMMAND...: start COMMAND in a new session, remember its PID.
start_in_background() {
  local log="$1"; shift
  setsid "$@" </dev/null >"$log" 2>&1 &
  echo $! >"$PID_FILE"
}

# stop_started [SECONDS]: TERM the whole session, wait up to SECONDS (30), then KILL.
stop_started() {
  local pid
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"; say "not running"; return 0
  fi
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
  for _ in $(seq 1 $((${1:-30} * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}
