"""A shared cache named by a django-environ URL: ``redis://HOST:PORT/DB``,
``pymemcache://HOST:PORT``, or ``dbcache://TABLE`` (Django's DatabaseCache) with a database URL
such as ``postgres://USER@HOST:PORT/NAME``. Its Django settings, and the chores around it:

    python -m support.shared_cache createcachetable --cache-url=URL --database-url=URL
    python -m support.shared_cache clear --cache-url=URL [--database-url=URL]

``createcachetable`` runs once, before any worker uses a database cache (workers never create
the table themselves: they would race each other doing it).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from .realm import ROOT


def cache_settings(cache_url: str, database_url: str = "") -> dict[str, Any]:
    """``CACHES`` (and ``DATABASES``, from ``database_url``) for ``settings.configure``."""
    import environ

    # redis:// is Django's own RedisCache even where django-redis is installed (django-environ
    # would pick django-redis then): the tests name the backend they prove.
    redis = cache_url.startswith("redis")
    builtin = "django.core.cache.backends.redis.RedisCache" if redis else None
    cache = environ.Env.cache_url_config(cache_url, backend=builtin)
    backend = cache["BACKEND"]
    # Short network timeouts: a dead server must not hang a worker.
    if backend.endswith("RedisCache"):
        cache.setdefault("OPTIONS", {}).update({"socket_connect_timeout": 1, "socket_timeout": 1})
    elif backend.endswith("PyMemcacheCache"):
        cache.setdefault("OPTIONS", {}).update({"connect_timeout": 1, "timeout": 1})
    configured: dict[str, Any] = {"CACHES": {"default": cache}}
    if database_url:
        database = environ.Env.db_url_config(database_url)
        if database["ENGINE"].endswith("postgresql"):
            database.setdefault("OPTIONS", {}).update({"connect_timeout": 2})
        configured["DATABASES"] = {"default": database}
    elif backend.endswith("DatabaseCache"):
        raise ValueError(f"{cache_url} is a database cache: it needs a database URL")
    return configured


def cache_kind(cache_url: str) -> str:
    """A short name for reports: redis, memcached, database or locmem."""
    scheme = cache_url.split(":", 1)[0]
    if scheme.startswith("redis"):
        return "redis"
    if scheme in ("pymemcache", "pylibmc", "memcache"):
        return "memcached"
    return {"dbcache": "database", "locmemcache": "locmem"}.get(scheme, scheme)


def configure(cache_url: str, database_url: str = "", **extra: Any) -> None:
    """Set Django up with this cache alone (plus ``extra`` settings), once per process."""
    import django
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        **cache_settings(cache_url, database_url), LOGGING_CONFIG=None, USE_TZ=True, **extra
    )
    django.setup()


@dataclass(frozen=True)
class SharedCache:
    """One real shared cache for the cross-process tests."""

    name: str
    cache_url: str
    database_url: str = ""

    def create_table(self) -> None:
        self._run("createcachetable")

    def clear(self) -> None:
        self._run("clear")

    def _run(self, action: str) -> None:
        # In a process of its own: the caller's Django (pytest's) knows nothing of this cache.
        command = [sys.executable, "-m", __name__, action, f"--cache-url={self.cache_url}"]
        if self.database_url:
            command.append(f"--database-url={self.database_url}")
        environment = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120
        )
        if result.returncode != 0:
            raise RuntimeError(f"{action} on {self.name} failed:\n{result.stderr[-3000:]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["createcachetable", "clear"])
    parser.add_argument("--cache-url", required=True)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args(argv)
    configure(args.cache_url, args.database_url)
    if args.action == "createcachetable":
        from django.core.management import call_command

        call_command("createcachetable", verbosity=0)
    else:
        from django.core.cache import cache

        cache.clear()


if __name__ == "__main__":
    main()
