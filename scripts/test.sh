#!/usr/bin/env bash
# The one test command: installs everything, starts Keycloak, Redis, memcached and PostgreSQL,
# runs lint (Python and shell), type checks, unit, integration, browser and benchmark-smoke tests
# (with a coverage floor), and stops what it started. Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=test.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

scripts/setup.sh --dev --bench
scripts/browser.sh install
ensure_command shellcheck shellcheck "$ROOT/.shellcheck-apt.log"
shellcheck scripts/*.sh .ci/run
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy

status=0
scripts/with-services.sh .venv/bin/pytest --cov --cov-report=term "$@" || status=$?
if [ "$status" -eq 5 ]; then
  echo "test.sh: pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$status"
