"""The demo's token cache from one URL (``CACHE_URL``), every Redis backend with socket timeouts.

redis://HOST:PORT/DB          Django's RedisCache (built in; needs redis-py)
django-redis://HOST:PORT/DB   django-redis (pip install django-redis)
anything else                 django-environ's cache URL (locmemcache://, pymemcache://...)
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import environ

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"
DJANGO_REDIS = "django_redis.cache.RedisCache"
# A Redis that hangs (paused, a dead primary, a lost route) must not hang requests: each cache
# call gives up after this many seconds, and the app serves the token from its memory (or
# fetches one) instead. Without them a call waits as long as the Redis does.
CONNECT_TIMEOUT = 1.0
READ_TIMEOUT = 1.0

DJANGO_REDIS_TIMEOUTS = {"SOCKET_CONNECT_TIMEOUT": CONNECT_TIMEOUT, "SOCKET_TIMEOUT": READ_TIMEOUT}


def cache_from_url(url: str) -> dict[str, Any]:
    """One ``CACHES`` entry. ``redis://`` is always Django's own backend: django-environ would
    pick django-redis for it whenever django-redis is installed."""
    scheme = url.split("://", 1)[0]
    if scheme in ("redis", "rediss"):
        cache: dict[str, Any] = environ.Env.cache_url_config(url, backend=REDIS_CACHE)
        timeouts = {"socket_connect_timeout": CONNECT_TIMEOUT, "socket_timeout": READ_TIMEOUT}
    elif scheme in ("django-redis", "django-rediss"):
        cache = environ.Env.cache_url_config(url.removeprefix("django-"), backend=DJANGO_REDIS)
        timeouts = DJANGO_REDIS_TIMEOUTS
    elif scheme == "django-redis-sentinel":
        cache, timeouts = sentinel_cache(url), DJANGO_REDIS_TIMEOUTS
    else:
        return dict(environ.Env.cache_url_config(url))
    cache.setdefault("OPTIONS", {}).update(timeouts)
    return cache


def sentinel_cache(url: str) -> dict[str, Any]:
    """django-redis on the primary that the Sentinels name: after a failover, the next command
    goes to the new primary (reads go to a replica, as django-redis's SentinelClient does)."""
    parts = urlsplit(url)
    addresses = parse_qs(parts.query)["sentinels"][0].split(",")
    sentinels = [(host, int(port)) for host, _, port in (a.rpartition(":") for a in addresses)]
    return {
        "BACKEND": DJANGO_REDIS,
        "LOCATION": f"redis://{parts.hostname}{parts.path or '/0'}",
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.SentinelClient",
            "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
            "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
            "SENTINELS": sentinels,
            "SENTINEL_KWARGS": {
                "socket_connect_timeout": CONNECT_TIMEOUT,
                "socket_timeout": READ_TIMEOUT,
            },
        },
    }
