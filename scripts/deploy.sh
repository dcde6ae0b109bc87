#!/usr/bin/env bash
# The demo deployed as users run it, for the fault run (scripts/soak.sh): the WSGI app under
# gunicorn (4 sync workers, --preload), the ASGI app under gunicorn's uvicorn workers (2), and a
# Celery prefork worker (4 children) whose broker is the Redis of scripts/redis.sh.
#
#   scripts/deploy.sh start|stop|restart|status
#
# Environment: the demo's settings (.env, CACHE_URL, KEYCLOAK_*...), DEPLOY_WSGI_PORT (8010),
# DEPLOY_ASGI_PORT (8011), REDIS_PORT (6390: Celery's broker is database 1 there),
# DEPLOY_WORKERS (4), DEPLOY_ASGI_WORKERS (2), DEPLOY_CELERY_CHILDREN (4).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="$ROOT/.deploy"
WSGI_PORT="${DEPLOY_WSGI_PORT:-8010}"
ASGI_PORT="${DEPLOY_ASGI_PORT:-8011}"
export CELERY_BROKER_URL="${CELERY_BROKER_URL:-redis://127.0.0.1:${REDIS_PORT:-6390}/1}"
export DJANGO_SETTINGS_MODULE=demo_project.settings
NAME=deploy.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

# use COMPONENT: point lib.sh's PID_FILE, LOG_FILE, PORT and `ready` at one component.
use() {
  COMPONENT="$1"
  PID_FILE="$STATE/$COMPONENT.pid"
  LOG_FILE="$STATE/$COMPONENT.log"
  case "$COMPONENT" in
    wsgi) PORT="$WSGI_PORT" ;;
    asgi) PORT="$ASGI_PORT" ;;
    celery) PORT="(broker $CELERY_BROKER_URL)" ;;
  esac
}

ready() {
  case "$COMPONENT" in
    wsgi|asgi) curl -fs -o /dev/null --max-time 5 "http://127.0.0.1:$PORT/.well-known/jwks.json" ;;
    celery) "$ROOT/.venv/bin/celery" -A demo_project.celery inspect ping --timeout 2 >/dev/null 2>&1 ;;
  esac
}

start_component() {
  use "$1"
  if pid="$(running_pid)"; then say "$COMPONENT already running (pid $pid)"; return 0; fi
  mkdir -p "$STATE"
  cd "$ROOT"
  case "$COMPONENT" in
    # --preload: the app is imported once in the master, then forked into each worker.
    wsgi) start_in_background "$LOG_FILE" .venv/bin/gunicorn demo_project.wsgi:application \
            --preload --workers "${DEPLOY_WORKERS:-4}" --worker-class sync \
            --bind "127.0.0.1:$PORT" --timeout 60 --graceful-timeout 5 --no-control-socket ;;
    asgi) start_in_background "$LOG_FILE" .venv/bin/gunicorn demo_project.asgi:application \
            --workers "${DEPLOY_ASGI_WORKERS:-2}" --worker-class uvicorn.workers.UvicornWorker \
            --bind "127.0.0.1:$PORT" --timeout 60 --graceful-timeout 5 --no-control-socket ;;
    celery) start_in_background "$LOG_FILE" .venv/bin/celery -A demo_project.celery worker \
              --pool prefork --concurrency "${DEPLOY_CELERY_CHILDREN:-4}" --loglevel INFO \
              --without-gossip --without-mingle --without-heartbeat ;;
  esac
  wait_until_ready 120 0.5
  say "$COMPONENT ready (pid $(cat "$PID_FILE")) $PORT"
}

COMPONENTS=(wsgi asgi celery)

case "${1:-}" in
  start) for c in "${COMPONENTS[@]}"; do start_component "$c"; done ;;
  stop) for c in "${COMPONENTS[@]}"; do use "$c"; stop_started 15; done ;;
  restart) "$0" stop; "$0" start ;;
  status)
    down=0
    for c in "${COMPONENTS[@]}"; do
      use "$c"
      if pid="$(running_pid)"; then echo "$c: running (pid $pid) $PORT"; else echo "$c: not running"; down=1; fi
    done
    exit "$down" ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
