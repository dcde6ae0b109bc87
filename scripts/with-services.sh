#!/usr/bin/env bash
# Runs a command with the local Keycloak, Redis, memcached and PostgreSQL up: starts those not
# running, runs the command, then stops only what it started. SERVICES="keycloak redis" limits it
# to those.
#   scripts/with-services.sh COMMAND [ARGS...]
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

started=()
stop_started() {
  for service in "${started[@]}"; do "$ROOT/scripts/$service.sh" stop || true; done
}
trap stop_started EXIT
for service in ${SERVICES:-keycloak redis memcached postgres}; do
  if ! "$ROOT/scripts/$service.sh" status >/dev/null 2>&1; then
    started+=("$service")
    "$ROOT/scripts/$service.sh" start
  fi
done
"$@"
