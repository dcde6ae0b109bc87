"""The fault run under load (``scripts/soak.sh``): the demo deployed under gunicorn, uvicorn
workers and a Celery prefork worker (``scripts/deploy.sh``), a bounded load of HTTP calls and
Celery tasks, and faults injected on a schedule (Keycloak and Redis restarts, a Redis pause,
killed workers); token requests counted at Keycloak (its events). See ``python -m
benchmarks.soak --help``."""
