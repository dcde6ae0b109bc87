"""The one validation of a client's settings: the system checks report ``client_problems``,
and building a config refuses a client with an error in it.

Each rule reads the merged settings and yields ``Problem``s of the checks in ``problems.py``;
``RULES`` fixes their order (the order of the messages).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.masked import kind_of

from . import credential_rules as credentials
from . import federated_rules as federated
from .defaults import (
    ASSERTION_LIFETIME_WARNING,
    CLIENT_KEYS,
    DEFAULT_CLIENT,
    FILE_KEYS,
    LOCK_MARGIN,
    SECRET_METHOD,
    SETTING_NAME,
    as_timeout,
    one_request_seconds,
)
from .keyfiles import ClientSettings
from .problems import (
    BAD_NUMBER,
    BAD_REALM,
    BAD_URL,
    BAD_VERIFY,
    DATABASE_CACHE,
    DUMMY_CACHE,
    FILE_CACHE,
    LOCMEM_CACHE,
    LONG_ASSERTIONS,
    NO_CLIENT_ID,
    NO_CLIENT_SECRET,
    NO_REALM,
    NO_SERVER_URL,
    NOT_A_DICT,
    NOT_ONE_STRING,
    PLAIN_HTTP,
    REDIS_REPLICAS,
    SECRET_WITH_FEDERATED,
    SHORT_LOCK,
    TLS_UNVERIFIED,
    UNCHECKABLE,
    UNKNOWN_CACHE,
    UNKNOWN_KEY,
    UNUSED_KEY,
    UNUSED_SECRET,
    Check,
    Problem,
)
from .reading import own_client_settings, raw_client_settings

REQUIRED = {
    "SERVER_URL": (NO_SERVER_URL, "the base URL of Keycloak, e.g. 'https://sso.example.com'"),
    "REALM": (NO_REALM, "the realm of the service-account client, e.g. 'demo'"),
    "CLIENT_ID": (NO_CLIENT_ID, "the client id of a confidential client with service accounts on"),
    "CLIENT_SECRET": (
        NO_CLIENT_SECRET,
        "the client's secret (Keycloak: Clients > Credentials); read it from the environment, "
        "e.g. KEYCLOAK_CLIENT_SECRET, never commit it",
    ),
}
NUMBER_HINTS = {  # each number's rule, for the one that is wrong
    "ASSERTION_LIFETIME": "ASSERTION_LIFETIME is seconds, at least 1 (default 60).",
    "LOCK_TIMEOUT": "LOCK_TIMEOUT is seconds above 0, or None (default: one request's worst "
    "case + 5 s).",
    "REFRESH_MARGIN": "REFRESH_MARGIN is seconds, 0 or more (default 30).",
    "RETRIES": "RETRIES is a count, 0 or more (default 2).",
    "TIMEOUT": "TIMEOUT is finite seconds above 0, or a (connect, read) pair of them (default "
    "(5, 10)).",
}
STRING_KEYS = (
    *("CACHE_ALIAS", "CLIENT_ID", "CLIENT_SECRET", "SCOPE", "AUDIENCE"),
    *("KEY_ID", "PRIVATE_KEY", "NEXT_PRIVATE_KEY", "ASSERTION_TYP"),
    *("DPOP_KEY", "DPOP_KEY_FILE", "DPOP_ALGORITHM"),
)
URL_HINT = (
    "SERVER_URL is Keycloak's base URL without '/realms/...', e.g. 'https://sso.example.com'; "
    "TOKEN_ENDPOINT is a full URL."
)

Rule = Callable[[ClientSettings], Iterator[Problem]]


def shape_problem() -> Problem | None:
    """The setting itself is not a dict (of dicts, for CLIENTS): nothing else can be read."""
    value = getattr(settings, SETTING_NAME, None)
    clients = value.get("CLIENTS") if isinstance(value, Mapping) else None
    if value is not None and not isinstance(value, Mapping):
        key, text = None, f"must be a dict, not {type(value).__name__}"
    elif clients is not None and not (
        isinstance(clients, Mapping) and all(isinstance(c, Mapping) for c in clients.values())
    ):
        key, text = "CLIENTS", "must be a dict of dicts, one per named client"
    else:
        return None
    hint = "See the README: {'SERVER_URL': ..., 'REALM': ..., 'CLIENTS': {'name': {...}}}."
    return Problem(NOT_A_DICT, key, text, hint)


@sensitive_variables()
def client_problems(name: str) -> list[Problem]:
    """Everything wrong with client ``name``'s settings, in a stable order."""
    shape = shape_problem()
    if shape is not None:
        return [shape]
    return settings_problems(name, raw_client_settings(name))


@sensitive_variables()
def settings_problems(name: str, raw: ClientSettings) -> list[Problem]:
    """Everything wrong with ``raw``, the merged settings of client ``name`` (a dict)."""
    unknown = [unknown_key(key) for key in own_client_settings(name) if key not in CLIENT_KEYS]
    found = [problem for rule in RULES for problem in checked(rule, raw)]
    return [inherited(name, problem) for problem in found] + unknown


def unknown_key(key: str) -> Problem:
    close = difflib.get_close_matches(str(key), CLIENT_KEYS, n=1)
    known = f"Known keys: {', '.join(sorted(CLIENT_KEYS))} (and CLIENTS at the top level)."
    hint = f"Did you mean {close[0]}?" if close else known
    return Problem(UNKNOWN_KEY, key, "is not a setting of keycloak_jwt_auth and is ignored", hint)


def inherited(name: str, problem: Problem) -> Problem:
    """An unused credential a named client inherits from the top level cannot be removed from
    it: the hint says how to unset it in this client only."""
    unused = (UNUSED_SECRET, UNUSED_KEY, SECRET_WITH_FEDERATED)
    if problem.check not in unused or name == DEFAULT_CLIENT:
        return problem
    if problem.key in own_client_settings(name):
        return problem
    hint = (
        f"It is inherited from the top level: set {problem.key!r}: None in "
        f"CLIENTS[{name!r}], or set AUTH_METHOD to the method it belongs to."
    )
    return dataclasses.replace(problem, hint=hint)


def checked(rule: Rule, raw: ClientSettings) -> list[Problem]:
    """``rule``'s problems. A rule that fails on a value it did not expect (any type can be
    written in a settings file) reports an E022 on the key it was reading: ``check`` and the
    first request report it, and no traceback carries the settings."""
    try:
        return list(rule(raw))
    except Exception as exc:
        text = f"has a value that cannot be checked ({type(exc).__name__})"
        hint = "Give it a value of the type the README's settings table names."
        return [Problem(UNCHECKABLE, raw.last_read, text, hint)]


def missing_settings(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key, (check, meaning) in REQUIRED.items():
        if key == "CLIENT_SECRET" and raw["AUTH_METHOD"] != SECRET_METHOD:
            continue
        if not hasattr(settings, SETTING_NAME):
            text = f"is not set: settings.py has no {SETTING_NAME}"
            yield Problem(check, key, text, f"Add {SETTING_NAME} and set {key} to {meaning}.")
        elif not raw[key]:
            yield Problem(check, key, "is missing or empty", f"Set it to {meaning}.")


def _url_problem(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises ValueError on a port that is not a number)
    except ValueError:
        return f"is not an http(s) URL: {value!r}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"is not an http(s) URL: {value!r}"
    if any(c.isspace() or not c.isprintable() for c in value):
        return f"contains spaces or control characters: {value!r}"
    if parts.username is not None or parts.fragment or "#" in value:
        return f"has a user name or a #fragment: {value!r}"
    if key == "SERVER_URL" and (parts.query or "?" in value):
        return f"has a query string: {value!r}"
    if key == "SERVER_URL" and "/realms/" in f"{value}/":
        return f"includes '/realms/...': {value!r}"
    return None


def bad_urls(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key in ("SERVER_URL", "TOKEN_ENDPOINT"):
        problem = _url_problem(key, raw[key]) if raw[key] else None
        if problem:
            yield Problem(BAD_URL, key, problem, URL_HINT)
        elif isinstance(raw[key], str) and raw[key].lower().startswith("http://"):
            text, hint = "uses http://: tokens travel unencrypted", "Use https:// in production."
            yield Problem(PLAIN_HTTP, key, text, hint)


def unknown_cache(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if isinstance(raw["CACHE_ALIAS"], str) and raw["CACHE_ALIAS"] not in settings.CACHES:
        yield Problem(
            UNKNOWN_CACHE,
            "CACHE_ALIAS",
            f"is {raw['CACHE_ALIAS']!r}, which is not in CACHES",
            f"Use one of {', '.join(map(repr, settings.CACHES))} or add it to CACHES.",
        )


def _is_number(value: Any, *, minimum: float, inclusive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    return value >= minimum if inclusive else value > minimum


def _invalid_numbers(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if not _is_number(raw["ASSERTION_LIFETIME"], minimum=1, inclusive=True):
        yield "ASSERTION_LIFETIME", f"must be at least 1 second, not {raw['ASSERTION_LIFETIME']!r}"
    lock = raw["LOCK_TIMEOUT"]
    if lock is not None and not _is_number(lock, minimum=0, inclusive=False):
        yield "LOCK_TIMEOUT", f"must be a number of seconds above 0 (or None), not {lock!r}"
    for key in ("REFRESH_MARGIN", "RETRIES"):
        if not _is_number(raw[key], minimum=0, inclusive=True):
            yield key, f"must be a number of at least 0, not {raw[key]!r}"
    timeout = raw["TIMEOUT"]
    pair = isinstance(timeout, (tuple, list))
    parts = timeout if pair else (timeout,)
    if timeout is not None and not (
        len(parts) == (2 if pair else 1)
        and all(_is_number(p, minimum=0, inclusive=False) for p in parts)
    ):
        yield (
            "TIMEOUT",
            f"must be seconds above 0, or a (connect, read) pair of them, not {timeout!r}",
        )


def bad_numbers(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key, text in _invalid_numbers(raw):
        yield Problem(BAD_NUMBER, key, text, NUMBER_HINTS[key])


def unverified_tls(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["VERIFY"] is False:
        yield Problem(
            TLS_UNVERIFIED,
            "VERIFY",
            "is False: Keycloak's TLS certificate is not verified",
            "Remove VERIFY, or set it to the path of your CA bundle.",
        )


def bad_realm(raw: Mapping[str, Any]) -> Iterator[Problem]:
    realm = raw["REALM"]
    if realm and (not isinstance(realm, str) or realm.strip() in (".", "..")):
        yield Problem(
            BAD_REALM,
            "REALM",
            f"is {realm!r}, which is not a realm name",
            "Use the realm's name as Keycloak shows it (Realm settings > General).",
        )


def bad_verify(raw: Mapping[str, Any]) -> Iterator[Problem]:
    verify = raw["VERIFY"]
    if verify is True or verify is False:
        return
    if not isinstance(verify, str) or not verify or not os.path.exists(verify):
        yield Problem(
            BAD_VERIFY,
            "VERIFY",
            f"is {verify!r}: only True, False or the path of an existing CA bundle are "
            "accepted (0, '' or 'false' would silently mean something else)",
            "Remove VERIFY (True: the system's CAs), or give the path of a CA bundle file.",
        )


def not_strings(raw: Mapping[str, Any]) -> Iterator[Problem]:
    # The text keys, and any other key given text that UTF-8 cannot encode (a REALM with a
    # lone surrogate from a bad environment would fail in every URL built from it).
    others = [k for k in raw if k not in STRING_KEYS + FILE_KEYS and isinstance(raw[k], str)]
    for key in [*STRING_KEYS, *FILE_KEYS, *others]:
        if not credentials.is_text(raw, key):
            kind = kind_of(raw[key])
            yield Problem(
                NOT_ONE_STRING,
                key,
                "must be one string of UTF-8 text, not "
                + ("text that cannot be encoded (a lone surrogate?)" if kind == "str" else kind),
                "SCOPE is space-separated ('email profile'); AUDIENCE one URL (Keycloak "
                "refuses an assertion with several audiences); read secrets and keys as text; "
                "*_FILE settings are paths.",
            )


def short_lock(raw: Mapping[str, Any]) -> Iterator[Problem]:
    lock, timeout = raw["LOCK_TIMEOUT"], raw["TIMEOUT"]
    if not _is_number(lock, minimum=0, inclusive=False) or any(_invalid_numbers(raw)):
        return
    worst = one_request_seconds(as_timeout(timeout))
    if lock < worst:
        yield Problem(
            SHORT_LOCK,
            "LOCK_TIMEOUT",
            f"is {lock!r} s, shorter than one token request's worst case ({worst:g} s: "
            "TIMEOUT's connect + read): with a slow Keycloak, other workers take the lock "
            "and fetch too",
            f"Remove LOCK_TIMEOUT (default: {worst:g} + {LOCK_MARGIN:g} s), or lower TIMEOUT.",
        )


def long_assertions(raw: Mapping[str, Any]) -> Iterator[Problem]:
    lifetime = raw["ASSERTION_LIFETIME"]
    if _is_number(lifetime, minimum=ASSERTION_LIFETIME_WARNING, inclusive=False):
        yield Problem(
            LONG_ASSERTIONS,
            "ASSERTION_LIFETIME",
            f"is {lifetime!r} s: a captured assertion stays redeemable that long, and "
            "Keycloak may refuse it as too old",
            f"Keep it at {ASSERTION_LIFETIME_WARNING} s or less (the default is 60).",
        )


# --- the caches the tokens are shared through (one check for the whole project) ----------

REDIS_CACHE = "django.core.cache.backends.redis.RedisCache"


def _backend_is(name: str) -> Callable[[Mapping[str, Any]], bool]:
    return lambda cache: cache.get("BACKEND") == name


def _redis_with_replicas(cache: Mapping[str, Any]) -> bool:
    location = cache.get("LOCATION") or ""
    servers = re.split("[;,]", location) if isinstance(location, str) else list(location)
    return cache.get("BACKEND") == REDIS_CACHE and len(servers) > 1


# Caches that cannot share one token per lifetime: (test, check, what it is, what to do).
UNFIT_CACHES: list[tuple[Callable[[Mapping[str, Any]], bool], Check, str, str]] = [
    (
        _backend_is("django.core.cache.backends.locmem.LocMemCache"),
        LOCMEM_CACHE,
        "a LocMemCache: each worker process then fetches and renews its own token",
        "For a site with several processes or hosts, add a shared cache to CACHES (e.g. "
        "'BACKEND': 'django.core.cache.backends.redis.RedisCache', 'LOCATION': "
        "'redis://127.0.0.1:6379/1') and name it in CACHE_ALIAS. One process in development: "
        "SILENCED_SYSTEM_CHECKS = ['keycloak_jwt_auth.W002'].",
    ),
    (
        _backend_is("django.core.cache.backends.dummy.DummyCache"),
        DUMMY_CACHE,
        "a DummyCache, which stores nothing: each worker process fetches and renews its own token",
        "Point CACHE_ALIAS at a real shared cache such as Redis.",
    ),
    (
        _backend_is("django.core.cache.backends.filebased.FileBasedCache"),
        FILE_CACHE,
        "a FileBasedCache, whose add() is not atomic across processes: several workers can "
        "take the renewal lock at once and each fetch a token",
        "Use RedisCache, PyMemcacheCache or DatabaseCache for CACHE_ALIAS.",
    ),
    (
        _backend_is("django.core.cache.backends.db.DatabaseCache"),
        DATABASE_CACHE,
        "a DatabaseCache, whose add() is not atomic over an expired row: once a renewal lock "
        "has timed out (its holder died, or a failed renewal backed off), several workers can "
        "take it at once and each fetch a token",
        "For strict single flight use RedisCache (one LOCATION) or PyMemcacheCache; the "
        "database cache still shares one token in normal operation.",
    ),
    (
        _redis_with_replicas,
        REDIS_REPLICAS,
        "a RedisCache with several servers, which reads from replicas: a worker may not see "
        "the lock or the token another worker has just written, and fetch one too",
        "Give the token cache one LOCATION (the primary), e.g. a separate CACHES alias.",
    ),
]

# A client's rules, in the order their problems are reported.
RULES: tuple[Rule, ...] = (
    missing_settings,
    credentials.unknown_auth_method,
    credentials.wrong_algorithm,
    bad_urls,
    unknown_cache,
    bad_numbers,
    credentials.short_secrets,
    unverified_tls,
    bad_realm,
    bad_verify,
    not_strings,
    credentials.padded_secret,
    short_lock,
    long_assertions,
    credentials.key_problems,
    credentials.bad_fallback_secrets,
    credentials.unused_credentials,
    credentials.dpop_problems,
    federated.assertion_source,
    federated.credentials_with_federated,
)
