#!/usr/bin/env bash
# The fault run under load (benchmarks/soak/): Keycloak and Redis (started unless running), the
# demo deployed by scripts/deploy.sh (gunicorn --preload, uvicorn workers, Celery prefork) on the
# realm's django-deploy client (12 s tokens) and django-redis, a load of HTTP calls and Celery
# tasks, and the faults: a killed gunicorn worker and Celery child, Redis paused and restarted,
# Keycloak restarted. Prints the table, saves it in artifacts/soak/; exits 1 if the promise broke.
#   scripts/soak.sh         the full soak: the faults repeated for SOAK_SECONDS (600)
#   scripts/soak.sh --ci    the CI-sized run: each fault once, 2 minutes of load
# Environment: SOAK_CACHE_URL (django-redis://127.0.0.1:$REDIS_PORT/0; redis://... for Django's
# RedisCache), DEPLOY_WSGI_PORT and DEPLOY_ASGI_PORT (scripts/deploy.sh), KEYCLOAK_PORT, REDIS_PORT.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

case "${1:-}" in
  "") args=(--full --seconds "${SOAK_SECONDS:-600}") ;;
  --ci) args=(--seconds 120) ;;
  *) echo "usage: $0 [--ci]" >&2; exit 2 ;;
esac
[ -x .venv/bin/gunicorn ] || scripts/setup.sh --dev
redis_url="redis://127.0.0.1:${REDIS_PORT:-6390}"
export DJANGO_DEBUG=False KEYCLOAK_DEMO_ALLOW_ANONYMOUS=True KEYCLOAK_REALM=demo \
  KEYCLOAK_SERVER_URL="http://127.0.0.1:${KEYCLOAK_PORT:-8080}" KEYCLOAK_CLIENT_ID=django-deploy \
  CACHE_URL="${SOAK_CACHE_URL:-django-$redis_url/0}" CELERY_BROKER_URL="$redis_url/1"
KEYCLOAK_CLIENT_SECRET="$(.venv/bin/python -c \
  'from support.realm import realm_secret; print(realm_secret("django-deploy"))')"
export KEYCLOAK_CLIENT_SECRET
# shellcheck disable=SC2016  # the single-quoted script is expanded by the inner bash
SERVICES="keycloak redis" scripts/with-services.sh bash -c '
  trap "scripts/deploy.sh stop" EXIT
  scripts/deploy.sh start
  .venv/bin/python -m benchmarks.soak "$@"
' soak "${args[@]}"
