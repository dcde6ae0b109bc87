"""System checks for ``KEYCLOAK_JWT_AUTH``: one function per concern, IDs never reused."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage, Error, Warning

from .conf import (
    ALGORITHMS,
    CLIENT_KEYS,
    DEFAULT_CLIENT,
    DEMO_SETTING_NAME,
    SETTING_NAME,
    client_names,
    demo_views_allow_anonymous,
    invalid_numbers,
    raw_client_settings,
)

TAG = "keycloak_jwt_auth"
REQUIRED = {
    "SERVER_URL": ("E002", "the base URL of Keycloak, e.g. 'https://sso.example.com'"),
    "REALM": ("E003", "the realm of the service-account client, e.g. 'demo'"),
    "CLIENT_ID": ("E004", "the client id of a confidential client with service accounts on"),
    "CLIENT_SECRET": (
        "E005",
        "the client's secret (Keycloak: Clients > Credentials); read it from the environment, "
        "e.g. KEYCLOAK_CLIENT_SECRET, never commit it",
    ),
}
SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 section 3.2
PER_PROCESS_CACHE = "django.core.cache.backends.locmem.LocMemCache"
DUMMY_CACHE = "django.core.cache.backends.dummy.DummyCache"


def _label(name: str, key: str | None = None) -> str:
    base = SETTING_NAME if name == DEFAULT_CLIENT else f"{SETTING_NAME}['CLIENTS'][{name!r}]"
    return f"{base}[{key!r}]" if key else base


def _clients() -> Iterator[tuple[str, dict[str, Any]]]:
    """Each configured client's merged settings; nothing when the setting's shape is wrong."""
    if _shape_problem() is None:
        for name in client_names():
            yield name, raw_client_settings(name)


def _shape_problem() -> str | None:
    value = getattr(settings, SETTING_NAME, None)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        return f"{SETTING_NAME} must be a dict, not {type(value).__name__}."
    clients = value.get("CLIENTS")
    if clients is not None and not (
        isinstance(clients, Mapping) and all(isinstance(c, Mapping) for c in clients.values())
    ):
        return f"{SETTING_NAME}['CLIENTS'] must be a dict of dicts, one per named client."
    return None


def check_setting_shape(**kwargs: Any) -> list[CheckMessage]:
    problem = _shape_problem()
    if problem is None:
        return []
    hint = "See the README: {'SERVER_URL': ..., 'REALM': ..., 'CLIENTS': {'name': {...}}}."
    return [Error(problem, hint=hint, id=f"{TAG}.E001")]


def check_required_settings(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, raw in _clients():
        for key, (check_id, meaning) in REQUIRED.items():
            if not raw[key]:
                errors.append(
                    Error(
                        f"{_label(name, key)} is missing or empty.",
                        hint=f"Set it to {meaning}.",
                        obj=_label(name),
                        id=f"{TAG}.{check_id}",
                    )
                )
    return errors


def check_algorithm(**kwargs: Any) -> list[CheckMessage]:
    return [
        Error(
            f"{_label(name, 'ALGORITHM')} is {raw['ALGORITHM']!r}, which Keycloak's "
            "client_secret_jwt does not use.",
            hint=f"Use one of {', '.join(ALGORITHMS)}, the same as the client's "
            "'Signature algorithm' in Keycloak.",
            obj=_label(name),
            id=f"{TAG}.E006",
        )
        for name, raw in _clients()
        if raw["ALGORITHM"] not in ALGORITHMS
    ]


def _url_problem(value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "is not an http(s) URL"
    return None


def check_urls(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for name, raw in _clients():
        for key in ("SERVER_URL", "TOKEN_ENDPOINT"):
            value = raw[key]
            if not value:
                continue
            problem = _url_problem(value)
            if key == "SERVER_URL" and problem is None and "/realms/" in f"{value}/":
                problem = "includes '/realms/...'"
            if problem:
                errors.append(
                    Error(
                        f"{_label(name, key)} {problem}: {value!r}.",
                        hint="SERVER_URL is Keycloak's base URL without '/realms/...', e.g. "
                        "'https://sso.example.com'; TOKEN_ENDPOINT is a full URL.",
                        obj=_label(name),
                        id=f"{TAG}.E007",
                    )
                )
    return errors


def check_cache_alias(**kwargs: Any) -> list[CheckMessage]:
    return [
        Error(
            f"{_label(name, 'CACHE_ALIAS')} is {raw['CACHE_ALIAS']!r}, which is not in CACHES.",
            hint=f"Use one of {', '.join(map(repr, settings.CACHES))} or add it to CACHES.",
            obj=_label(name),
            id=f"{TAG}.E008",
        )
        for name, raw in _clients()
        if raw["CACHE_ALIAS"] not in settings.CACHES
    ]


def check_numbers(**kwargs: Any) -> list[CheckMessage]:
    return [
        Error(
            f"{_label(name)}: {problem}.",
            hint="ASSERTION_LIFETIME and LOCK_TIMEOUT are seconds (defaults 60 and 10); "
            "REFRESH_MARGIN seconds (default 30); RETRIES a count (default 2); "
            "TIMEOUT seconds or a (connect, read) pair (default (5, 10)).",
            obj=_label(name),
            id=f"{TAG}.E009",
        )
        for name, raw in _clients()
        for problem in invalid_numbers(raw)
    ]


def check_secret_length(**kwargs: Any) -> list[CheckMessage]:
    warnings: list[CheckMessage] = []
    for name, raw in _clients():
        secret, needed = raw["CLIENT_SECRET"], SECRET_BYTES.get(raw["ALGORITHM"])
        if secret and needed and len(str(secret).encode()) < needed:
            warnings.append(
                Warning(
                    f"{_label(name, 'CLIENT_SECRET')} is shorter than {needed} bytes, the "
                    f"minimum key size for {raw['ALGORITHM']} (RFC 7518 section 3.2).",
                    hint="Regenerate the client secret in Keycloak (Credentials > Regenerate); "
                    "its generated secrets are long enough.",
                    obj=_label(name),
                    id=f"{TAG}.W001",
                )
            )
    return warnings


def check_token_cache_is_shared(**kwargs: Any) -> list[CheckMessage]:
    warnings: list[CheckMessage] = []
    aliases = {raw["CACHE_ALIAS"] for _, raw in _clients()} & set(settings.CACHES)
    for alias in sorted(aliases):
        backend = settings.CACHES[alias].get("BACKEND")
        if backend == PER_PROCESS_CACHE:
            warnings.append(
                Warning(
                    f"Keycloak tokens are kept in cache {alias!r}, a LocMemCache: each worker "
                    "process then fetches and renews its own token.",
                    hint="For a site with several processes or hosts, use a shared cache, e.g. "
                    "CACHE_URL=redis://127.0.0.1:6379/1 (Django's RedisCache), or set "
                    "CACHE_ALIAS to one.",
                    obj=f"CACHES[{alias!r}]",
                    id=f"{TAG}.W002",
                )
            )
        elif backend == DUMMY_CACHE:
            warnings.append(
                Warning(
                    f"Keycloak tokens are kept in cache {alias!r}, a DummyCache, which stores "
                    "nothing: each worker process fetches and renews its own token.",
                    hint="Point CACHE_ALIAS at a real shared cache such as Redis.",
                    obj=f"CACHES[{alias!r}]",
                    id=f"{TAG}.W003",
                )
            )
    return warnings


def check_unknown_keys(**kwargs: Any) -> list[CheckMessage]:
    if _shape_problem() is not None:
        return []
    top = getattr(settings, SETTING_NAME, None) or {}
    sources = [(DEFAULT_CLIENT, {k: v for k, v in top.items() if k != "CLIENTS"})]
    sources += list((top.get("CLIENTS") or {}).items())
    return [
        Warning(
            f"{_label(name, key)} is not a setting of keycloak_jwt_auth and is ignored.",
            hint=f"Known keys: {', '.join(sorted(CLIENT_KEYS))} (and CLIENTS at the top level).",
            obj=_label(name),
            id=f"{TAG}.W004",
        )
        for name, values in sources
        for key in values
        if key not in CLIENT_KEYS
    ]


def check_https(**kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(
            f"{_label(name, key)} uses http://: tokens travel unencrypted.",
            hint="Use https:// in production.",
            obj=_label(name),
            id=f"{TAG}.W101",
        )
        for name, raw in _clients()
        for key in ("SERVER_URL", "TOKEN_ENDPOINT")
        if isinstance(raw[key], str) and raw[key].lower().startswith("http://")
    ]


def check_tls_verification(**kwargs: Any) -> list[CheckMessage]:
    return [
        Warning(
            f"{_label(name, 'VERIFY')} is False: Keycloak's TLS certificate is not verified.",
            hint="Remove VERIFY, or set it to the path of your CA bundle.",
            obj=_label(name),
            id=f"{TAG}.W102",
        )
        for name, raw in _clients()
        if raw["VERIFY"] is False
    ]


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


CHECKS = [
    check_setting_shape,
    check_required_settings,
    check_algorithm,
    check_urls,
    check_cache_alias,
    check_numbers,
    check_secret_length,
    check_token_cache_is_shared,
    check_unknown_keys,
]
DEPLOY_CHECKS = [check_https, check_tls_verification, check_demo_views_closed]


def register_all() -> None:
    for check in CHECKS:
        checks.register(check, TAG)
    for check in DEPLOY_CHECKS:
        checks.register(check, TAG, deploy=True)
