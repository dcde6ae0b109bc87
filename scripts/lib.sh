# shellcheck shell=bash
# Shared by the scripts (sourced, not run). Each service runs in its own session (setsid) with
# its PID in a file, so it can be stopped whole and only by us.
# Needs: NAME (for messages); PID_FILE for the service functions (and LOG_FILE, PORT and a
# `ready` function for wait_until_ready; PORT and `start`/`stop` for service_main).

say() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() { say "$*"; exit 1; }

# ensure_command COMMAND PACKAGE LOG: when COMMAND is missing, install Debian's PACKAGE with
# apt-get (as root; otherwise say how), its output in LOG.
ensure_command() {
  local command="$1" package="$2" log="$3"
  command -v "$command" >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] \
    || die "$command is missing: install Debian's package (sudo apt-get install $package)"
  apt_install "$package" "$log"
}

# apt_install PACKAGE LOG: install Debian's PACKAGE with apt-get (as root), its output in LOG.
apt_install() {
  local package="$1" log="$2"
  say "installing Debian's $package with apt-get (log: $log)"
  mkdir -p "$(dirname "$log")"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "$package"; } >"$log" 2>&1 \
    || { tail -n 20 "$log" >&2; die "apt-get could not install $package"; }
}

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

# stop_started [SECONDS [SIGNAL]]: send SIGNAL (TERM) to the whole session, wait up to SECONDS
# (30), then KILL.
stop_started() {
  local pid signal="${2:-TERM}"
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"; say "not running"; return 0
  fi
  kill -"$signal" -- "-$pid" 2>/dev/null || kill -"$signal" "$pid"
  for _ in $(seq 1 $((${1:-30} * 10))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL -- "-$pid" 2>/dev/null || true
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

# wait_until_ready TRIES SECONDS: until the service's `ready` function answers, trying TRIES
# times SECONDS apart; when it never does, or the service dies, show its log's end and die.
wait_until_ready() {
  for _ in $(seq 1 "$1"); do
    ready && return 0
    running_pid >/dev/null || break
    sleep "$2"
  done
  tail -n 20 "$LOG_FILE" >&2 || true
  die "${NAME%.sh} did not answer on port $PORT"
}

# service_main ACTION: a service script's command line (start, stop, restart, status). Needs its
# functions start and stop, and PORT.
service_main() {
  local pid
  case "${1:-}" in
    start)
      if pid="$(running_pid)"; then say "already running (pid $pid) on port $PORT"; else start; fi ;;
    stop) stop ;;
    restart) stop; start ;;
    status) if pid="$(running_pid)"; then echo "running (pid $pid) on port $PORT"; else echo "not running"; exit 3; fi ;;
    *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
  esac
}
