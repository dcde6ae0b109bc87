#!/usr/bin/env bash
# A throwaway local PostgreSQL cluster for the database-cache tests (loopback, non-default port,
# trust auth, no Unix socket), with one database for them.
#
#   scripts/postgres.sh start|stop|restart|status
#
# Environment: POSTGRES_PORT (5490), POSTGRES_DB (keycloak_jwt_auth), POSTGRES_OS_USER (postgres).
# Installs Debian's postgresql when missing and run as root. PostgreSQL refuses to run as root:
# then the cluster belongs to, and runs as, the unprivileged POSTGRES_OS_USER (created if missing).
# Connect as: postgres://postgres@127.0.0.1:$POSTGRES_PORT/$POSTGRES_DB
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.postgres"
PORT="${POSTGRES_PORT:-5490}"
DB="${POSTGRES_DB:-keycloak_jwt_auth}"
OS_USER="${POSTGRES_OS_USER:-postgres}"
PID_FILE="$STATE/postgres.pid"
LOG_FILE="$STATE/postgres.log"
DATA="$STATE/data"
NAME=postgres.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# The newest server Debian installed: /usr/lib/postgresql/<major>/bin.
server_bin() {
  local dir
  dir="$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin 2>/dev/null | sort -V | tail -n 1)"
  [ -n "$dir" ] && [ -x "$dir/postgres" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

ensure_server() {
  server_bin >/dev/null && return 0
  [ "$(id -u)" -eq 0 ] \
    || die "the PostgreSQL server is missing: install Debian's package (sudo apt-get install postgresql)"
  apt_install postgresql "$STATE/apt.log"
  server_bin >/dev/null || die "Debian's postgresql installed no server under /usr/lib/postgresql"
}

# as_owner COMMAND...: run COMMAND as the cluster's owner (POSTGRES_OS_USER when we are root).
# setpriv execs the command, so a PID we record is the command's own.
AS_OWNER=()
[ "$(id -u)" -ne 0 ] || AS_OWNER=(setpriv "--reuid=$OS_USER" "--regid=$OS_USER" --init-groups --)
as_owner() { "${AS_OWNER[@]}" "$@"; }

ensure_owner() {
  [ "$(id -u)" -eq 0 ] || return 0
  if ! id -u "$OS_USER" >/dev/null 2>&1; then
    say "creating the system user $OS_USER to own and run the cluster"
    useradd --system --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin "$OS_USER"
  fi
  # The owner must reach the data directory through every parent folder. When one is closed to
  # others (a checkout under /root), the cluster lives in /var/tmp, linked from .postgres/data.
  as_owner test -x "$STATE" && return 0
  DATA="/var/tmp/keycloak_jwt_auth-postgres.$(printf %s "$ROOT" | sha256sum | cut -c1-12)"
  say "user $OS_USER cannot enter $STATE: the cluster lives in $DATA"
  [ -L "$STATE/data" ] || rm -rf "$STATE/data"
  ln -sfn "$DATA" "$STATE/data"
}

ready() { "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres; }

psql_() { "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U postgres "$@"; }

start() {
  mkdir -p "$STATE"
  ensure_server
  BIN="$(server_bin)"
  ensure_owner
  if [ ! -s "$DATA/PG_VERSION" ]; then
    rm -rf "$DATA"
    mkdir -p "$DATA"
    [ "$(id -u)" -ne 0 ] || chown "$OS_USER:" "$DATA"
    chmod 700 "$DATA"
    # Trust for local connections: the server listens on loopback only, for tests.
    as_owner "$BIN/initdb" --pgdata="$DATA" --username=postgres --auth=trust \
      --encoding=UTF8 --no-locale --no-sync >"$STATE/initdb.log" 2>&1 \
      || { tail -n 20 "$STATE/initdb.log" >&2; die "initdb failed"; }
  fi
  # A throwaway cluster: TCP on loopback only, no Unix socket, no fsync.
  start_in_background "$LOG_FILE" "${AS_OWNER[@]}" "$BIN/postgres" -D "$DATA" -p "$PORT" \
    -c listen_addresses=127.0.0.1 -c unix_socket_directories= -c max_connections=200 \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off
  wait_until_ready 100 0.2
  if [ -z "$(psql_ -d postgres -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
    psql_ -d postgres -c "CREATE DATABASE \"$DB\"" >/dev/null
  fi
  say "ready at postgres://postgres@127.0.0.1:$PORT/$DB (pid $(cat "$PID_FILE"))"
}

# Fast shutdown (SIGINT): ends the open sessions instead of waiting for them.
stop() { stop_started 30 INT; }

service_main "$@"
