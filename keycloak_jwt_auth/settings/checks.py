"""System checks for ``KEYCLOAK_JWT_AUTH``. IDs are never reused.

A client's settings are validated by ``conf.client_problems`` (the same list the run time
refuses a client by); this module reports it, and adds what concerns the whole project: the
cache the tokens are shared through, and the demo views.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register

from .config import (
    DEFAULT_CLIENT,
    DEMO_SETTING_NAME,
    SETTING_NAME,
    Problem,
    client_names,
    client_problems,
    demo_views_allow_anonymous,
    raw_client_settings,
    shape_problem,
)

TAG = "keycloak_jwt_auth"
REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def _backend_is(name: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda cache: cache.get("BACKEND") == name


def _redis_with_replicas(cache: Mapping[str, Any]) -> bool:
    location = cache.get("LOCATION") or ""
    servers = re.split("[;,]", location) if isinstance(location, str) else list(location)
    return cache.get("BACKEND") == REDIS_CACHE and len(servers) > 1


# Caches that cannot share one token per lifetime: (test, id, what it is, what to do).
UNFIT_CACHES = [
    (
        _backend_is("django.core.cache.backends.locmem.LocMemCache"),
        "W002",
        "a LocMemCache: each worker process then fetches and renews its own token",
        "For a site with several processes or hosts, use a shared cache, e.g. "
        "CACHE_URL=redis://127.0.0.1:6379/1 (Django's RedisCache), or set CACHE_ALIAS to one.",
    ),
    (
        _backend_is("django.core.cache.backends.dummy.DummyCache"),
        "W003",
        "a DummyCache, which stores nothing: each worker process fetches and renews its own token",
        "Point CACHE_ALIAS at a real shared cache such as Redis.",
    ),
    (
        _backend_is("django.core.cache.backends.filebased.FileBasedCache"),
        "W007",
        "a FileBasedCache, whose add() is not atomic across processes: several workers can "
        "take the renewal lock at once and each fetch a token",
        "Use RedisCache, PyMemcacheCache or DatabaseCache for CACHE_ALIAS.",
    ),
    (
        _backend_is("django.core.cache.backends.db.DatabaseCache"),
        "W009",
        "a DatabaseCache, whose add() is not atomic over an expired row: once a renewal lock "
        "has timed out (its holder died, or a failed renewal backed off), several workers can "
        "take it at once and each fetch a token",
        "For strict single flight use RedisCache (one LOCATION) or PyMemcacheCache; the "
        "database cache still shares one token in normal operation.",
    ),
    (
        _redis_with_replicas,
        "W008",
        "a RedisCache with several servers, which reads from replicas: a worker may not see "
        "the lock or the token another worker has just written, and fetch one too",
        "Give the token cache one LOCATION (the primary), e.g. a separate CACHES alias.",
    ),
]


def _label(name: str, key: str | None = None) -> str:
    base = SETTING_NAME if name == DEFAULT_CLIENT else f"{SETTING_NAME}['CLIENTS'][{name!r}]"
    return f"{base}[{key!r}]" if key else base


def _message(name: str, problem: Problem) -> CheckMessage:
    level = Error if problem.is_error else Warning
    return level(
        f"{_label(name, problem.key)} {problem.text}.",
        hint=problem.hint,
        obj=_label(name),
        id=f"{TAG}.{problem.id}",
    )


def _report(*, deploy: bool) -> list[CheckMessage]:
    shape = shape_problem()
    if shape is not None:
        return [] if deploy else [_message(DEFAULT_CLIENT, shape)]
    return [
        _message(name, problem)
        for name in client_names()
        for problem in client_problems(name)
        if problem.deploy is deploy
    ]


@register(TAG)
def check_client_settings(**kwargs: Any) -> list[CheckMessage]:
    return _report(deploy=False)


@register(TAG, deploy=True)
def check_client_settings_for_production(**kwargs: Any) -> list[CheckMessage]:
    return _report(deploy=True)


@register(TAG, Tags.caches)
def check_token_cache_is_shared(**kwargs: Any) -> list[CheckMessage]:
    if shape_problem() is not None:
        return []
    aliases = {raw_client_settings(name)["CACHE_ALIAS"] for name in client_names()}
    return [
        Warning(
            f"Keycloak tokens are kept in cache {alias!r}, {what}.",
            hint=hint,
            obj=f"CACHES[{alias!r}]",
            id=f"{TAG}.{check_id}",
        )
        for alias in sorted(aliases & set(settings.CACHES))
        for unfit, check_id, what, hint in UNFIT_CACHES
        if unfit(settings.CACHES[alias])
    ]


@register(TAG, deploy=True)
def check_demo_views_closed(**kwargs: Any) -> list[CheckMessage]:
    if not demo_views_allow_anonymous() or settings.DEBUG:
        return []
    return [
        Warning(
            f"{DEMO_SETTING_NAME} is True with DEBUG off: anyone can list the realm's users "
            "through the demo views.",
            hint=f"Set {DEMO_SETTING_NAME} = False (staff only) or do not include "
            "keycloak_jwt_auth.urls in production.",
            id=f"{TAG}.W103",
        )
    ]
