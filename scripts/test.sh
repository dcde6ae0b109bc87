#!/usr/bin/env bash
# The one test command (CI runs it through .ci/run). Installs everything, then runs, each step
# timed:
#   - lint (Python and shell), mypy --strict, the docs site (Sphinx, warnings are errors);
#   - every test on Python 3.11 + Django 5.2 with Keycloak (scripts/keycloak.sh's version), Redis,
#     memcached, PostgreSQL and Chromium, with branch coverage (its floor is in pyproject.toml); extra arguments go here;
#   - the version matrix (noxfile.py): the unit and Keycloak contract tests on Python 3.10, 3.12
#     and 3.13 with Django 5.2 (lowest dependencies), 6.0 and 6.1 (newest dependencies);
#   - the fault run under load, CI-sized (scripts/soak.sh --ci, about 2.5 minutes): the demo under
#     gunicorn, uvicorn workers and Celery, with Keycloak and Redis restarted, paused, killed;
#   - the contract tests on the lowest supported Keycloak, KEYCLOAK_LOWEST_VERSION.
# A failed step does not stop the next ones; the run exits non-zero when any step failed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NAME=test.sh
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

KEYCLOAK_VERSION="$(scripts/keycloak.sh version)"
KEYCLOAK_LOWEST_VERSION="${KEYCLOAK_LOWEST_VERSION:-26.4.7}"
# The lowest Keycloak listens beside the main one (which a developer may keep running).
KEYCLOAK_LOWEST_PORT="${KEYCLOAK_LOWEST_PORT:-$((${KEYCLOAK_PORT:-8080} + 1))}"
KEYCLOAK_LOWEST_MANAGEMENT_PORT="${KEYCLOAK_LOWEST_MANAGEMENT_PORT:-$((${KEYCLOAK_MANAGEMENT_PORT:-9000} + 1))}"
STEPS="$(mktemp)"  # one line per finished step: seconds, exit status, title
trap 'rm -f "$STEPS"' EXIT
export STEPS KEYCLOAK_VERSION

# step TITLE COMMAND...: runs COMMAND and records how long it took and how it ended.
step() {
  local title="$1" started=$SECONDS status=0
  shift
  printf '\n== %s\n' "$title" >&2
  "$@" || status=$?
  printf '%s\t%s\t%s\n' "$((SECONDS - started))" "$status" "$title" >>"$STEPS"
  printf '== %s: %s in %ss\n' "$title" "$([ "$status" -eq 0 ] && echo ok || echo "FAILED (exit $status)")" \
    "$((SECONDS - started))" >&2
  return "$status"
}

# The steps that need Keycloak, Redis, memcached and PostgreSQL: run inside with-services.sh.
suites_with_services() {
  local session failed=0
  step "tests: Python 3.11, Django 5.2, Keycloak $KEYCLOAK_VERSION, every service, coverage" \
    .venv/bin/pytest --cov --cov-report=term "$@" || failed=1
  for session in $(.venv/bin/nox --list --json | .venv/bin/python -c \
    'import json, sys; print(*(s["session"] for s in json.load(sys.stdin)))'); do
    step "matrix: $session (unit and contract tests)" .venv/bin/nox --session "$session" || failed=1
  done
  step "fault run under load: gunicorn, uvicorn and Celery workers, django-redis (scripts/soak.sh --ci)" \
    scripts/soak.sh --ci || failed=1
  return "$failed"
}
export -f step suites_with_services

summary() {
  local seconds status title failed=0
  printf '\n== steps (seconds, result)\n' >&2
  while IFS=$'\t' read -r seconds status title; do
    printf '%6s  %-6s %s\n' "$seconds" "$([ "$status" -eq 0 ] && echo ok || echo FAILED)" "$title" >&2
    [ "$status" -eq 0 ] || failed=1
  done <"$STEPS"
  printf '%6s  total\n' "$SECONDS" >&2
  return "$failed"
}

setup() {
  scripts/setup.sh --dev --bench
  scripts/browser.sh install
  ensure_command shellcheck shellcheck "$ROOT/.shellcheck-apt.log"
}

step "setup: .venv, Chromium, shellcheck" setup || { summary; exit 1; }
step "lint: shellcheck, ruff" bash -c \
  'shellcheck scripts/*.sh .ci/run && .venv/bin/ruff check . && .venv/bin/ruff format --check .' || true
step "types: mypy --strict" .venv/bin/mypy || true
step "docs: sphinx-build, warnings are errors" \
  .venv/bin/sphinx-build -q -W --keep-going -b html docs artifacts/docs || true
step "services: Keycloak $KEYCLOAK_VERSION, Redis, memcached, PostgreSQL up for the steps above" \
  scripts/with-services.sh bash -c 'suites_with_services "$@"' suites "$@" || true
step "contract tests on Keycloak $KEYCLOAK_LOWEST_VERSION (lowest supported)" \
  env KEYCLOAK_VERSION="$KEYCLOAK_LOWEST_VERSION" KEYCLOAK_PORT="$KEYCLOAK_LOWEST_PORT" \
  KEYCLOAK_MANAGEMENT_PORT="$KEYCLOAK_LOWEST_MANAGEMENT_PORT" SERVICES=keycloak \
  scripts/with-services.sh .venv/bin/pytest -q -m contract -p no:cacheprovider || true
summary
