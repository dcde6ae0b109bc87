#!/usr/bin/env bash
# The fault run under load (benchmarks/soak/): Keycloak and Redis (started unless running), the
# demo deployed by scripts/deploy.sh (gunicorn --preload, uvicorn workers, Celery prefork) on the
# realm's django-deploy client (12 s tokens) and django-redis, a load of HTTP calls and Celery
# tasks, and the faults: a killed gunicorn worker and Celery child, Redis paused and restarted,
# Keycloak restarted; and a Redis primary killed under Sentinel (scripts/sentinel.sh). Prints the
# table, saves it in artifacts/soak/; exits 1 if the promise broke.
#   scripts/soak.sh             the full soak: the faults repeated for SOAK_SECONDS (600), then
#                               the Sentinel failover
#   scripts/soak.sh --ci        the CI-sized run: each fault once, 2 minutes of load
#   scripts/soak.sh --sentinel  the Sentinel failover alone (1 minute)
# Environment: SOAK_CACHE_URL (django-redis://127.0.0.1:$REDIS_PORT/0; redis://... for Django's
# RedisCache), DEPLOY_WSGI_PORT and DEPLOY_ASGI_PORT (scripts/deploy.sh), KEYCLOAK_PORT,
# REDIS_PORT, SENTINEL_PORT and SENTINEL_REDIS_PORTS (scripts/sentinel.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

[ -x .venv/bin/gunicorn ] || scripts/setup.sh --dev
redis_url="redis://127.0.0.1:${REDIS_PORT:-6390}"
export DJANGO_DEBUG=False KEYCLOAK_DEMO_ALLOW_ANONYMOUS=True KEYCLOAK_REALM=demo \
  KEYCLOAK_SERVER_URL="http://127.0.0.1:${KEYCLOAK_PORT:-8080}" KEYCLOAK_CLIENT_ID=django-deploy \
  CELERY_BROKER_URL="$redis_url/1"
KEYCLOAK_CLIENT_SECRET="$(.venv/bin/python -c \
  'from support.realm import realm_secret; print(realm_secret("django-deploy"))')"
export KEYCLOAK_CLIENT_SECRET

# soak SERVICES CACHE_URL PLAN SECONDS: with SERVICES up, the demo deployed on CACHE_URL, one run.
soak() {
  # shellcheck disable=SC2016  # the single-quoted script is expanded by the inner bash
  SERVICES="$1" CACHE_URL="$2" scripts/with-services.sh bash -c '
    trap "scripts/deploy.sh stop" EXIT
    scripts/deploy.sh start
    .venv/bin/python -m benchmarks.soak --plan "$1" --seconds "$2"
  ' soak "$3" "$4"
}
cache_url="${SOAK_CACHE_URL:-django-$redis_url/0}"
sentinel_url="django-redis-sentinel://deploy/0?sentinels=127.0.0.1:${SENTINEL_PORT:-26390}"
case "${1:-}" in
  "") status=0
      soak "keycloak redis" "$cache_url" full "${SOAK_SECONDS:-600}" || status=1
      soak "keycloak redis sentinel" "$sentinel_url" sentinel 60 || status=1
      exit "$status" ;;
  --ci) soak "keycloak redis" "$cache_url" ci 120 ;;
  --sentinel) soak "keycloak redis sentinel" "$sentinel_url" sentinel 60 ;;
  *) echo "usage: $0 [--ci|--sentinel]" >&2; exit 2 ;;
esac
