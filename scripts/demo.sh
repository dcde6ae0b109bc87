#!/usr/bin/env bash
# The demo in one command: dependencies, Keycloak with the demo realm, migrations, the demo page at
# http://127.0.0.1:8000/ until Ctrl-C (and Keycloak stops with it), and a real token once it is up
# (the server comes first: private_key_jwt clients need its JWKS when Keycloak checks a token
# request).
#   scripts/demo.sh          Django's runserver (WSGI)
#   scripts/demo.sh --asgi   uvicorn (ASGI): the async views /api/async/users/ and /api/async/token/
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

case "${1:-}" in
  "") export DEMO_SERVER=wsgi ;;
  --asgi) export DEMO_SERVER=asgi ;;
  *) echo "usage: $0 [--asgi]" >&2; exit 2 ;;
esac
scripts/setup.sh
export DJANGO_SETTINGS_MODULE=demo_project.settings
# shellcheck disable=SC2016  # the single-quoted script is expanded by the inner bash
SERVICES=keycloak exec scripts/with-services.sh bash -c '
  set -euo pipefail
  .venv/bin/python manage.py migrate --verbosity 0
  url="http://127.0.0.1:${DEMO_PORT:-8000}"
  if [ "$DEMO_SERVER" = asgi ]; then
    .venv/bin/uvicorn demo_project.asgi:application --host 127.0.0.1 --port "${DEMO_PORT:-8000}" &
  else
    .venv/bin/python manage.py runserver "127.0.0.1:${DEMO_PORT:-8000}" &
  fi
  server=$!
  for _ in $(seq 60); do curl -fs -o /dev/null "$url/.well-known/jwks.json" && break; sleep 0.5; done
  echo "== manage.py fetch_token --decode (claims of a real service-account token)"
  .venv/bin/python manage.py fetch_token --decode || true
  echo "== demo page: $url/  ($DEMO_SERVER; Ctrl-C to stop)"
  wait "$server"
'
