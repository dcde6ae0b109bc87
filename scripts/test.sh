#!/usr/bin/env bash
# The one test command: installs everything, starts Keycloak and Redis, runs lint, type checks,
# unit, integration and browser tests, and stops what it started. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh --dev
scripts/browser.sh install

stop_started() {
  [ -n "${started_keycloak:-}" ] && scripts/keycloak.sh stop || true
  [ -n "${started_redis:-}" ] && scripts/redis.sh stop || true
}
trap stop_started EXIT
scripts/keycloak.sh status >/dev/null 2>&1 || { started_keycloak=1; scripts/keycloak.sh start; }
scripts/redis.sh status >/dev/null 2>&1 || { started_redis=1; scripts/redis.sh start; }

.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

status=0
.venv/bin/pytest --cov --cov-report=term "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
