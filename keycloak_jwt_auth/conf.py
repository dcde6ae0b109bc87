"""Settings: the ``KEYCLOAK_JWT_AUTH`` dict merged with defaults, one ``ClientConfig`` per client.

Top-level keys configure the client named ``"default"``; ``"CLIENTS"`` adds named clients whose
keys override the top-level ones. Configs are built on first use and dropped when Django's
``setting_changed`` signal fires (so ``override_settings`` just works).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from .exceptions import ConfigurationError

SETTING_NAME = "KEYCLOAK_JWT_AUTH"
DEMO_SETTING_NAME = "KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS"
DEFAULT_CLIENT = "default"
ALGORITHMS = ("HS256", "HS384", "HS512")

Timeout = float | tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 10.0)  # (connect, read) seconds

DEFAULTS: dict[str, Any] = {
    "SERVER_URL": None,
    "REALM": None,
    "CLIENT_ID": None,
    "CLIENT_SECRET": None,
    "ALGORITHM": "HS256",
    "AUDIENCE": None,  # None: the realm issuer URL
    "TOKEN_ENDPOINT": None,  # None: derived from SERVER_URL and REALM
    "SCOPE": None,
    "ASSERTION_LIFETIME": 60,
    "CACHE_ALIAS": "default",
    "REFRESH_MARGIN": 30,
    "TIMEOUT": DEFAULT_TIMEOUT,
    "VERIFY": True,
    "RETRIES": 2,
    "BACKGROUND_REFRESH": True,
    "LOCK_TIMEOUT": 10,
}
CLIENT_KEYS = frozenset(DEFAULTS)


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """The resolved settings of one client. Its repr never shows the secret."""

    name: str
    server_url: str
    realm: str
    client_id: str
    client_secret: str = dataclasses.field(repr=False)
    algorithm: str
    audience: str
    token_endpoint: str
    scope: str | None
    assertion_lifetime: int
    cache_alias: str
    refresh_margin: float
    timeout: Timeout
    verify: bool | str
    retries: int
    background_refresh: bool
    lock_timeout: float

    @property
    def issuer(self) -> str:
        return realm_issuer(self.server_url, self.realm)

    @property
    def admin_url(self) -> str:
        return f"{self.server_url}/admin/realms/{self.realm}"

    def __repr__(self) -> str:
        return (
            f"ClientConfig(name={self.name!r}, client_id={self.client_id!r}, "
            f"realm={self.realm!r}, server_url={self.server_url!r}, client_secret='********')"
        )


def realm_issuer(server_url: str, realm: str) -> str:
    return f"{server_url.rstrip('/')}/realms/{realm}"


def user_settings() -> Mapping[str, Any]:
    return getattr(settings, SETTING_NAME, None) or {}


def client_names() -> list[str]:
    clients = user_settings().get("CLIENTS") or {}
    return [DEFAULT_CLIENT, *(name for name in clients if name != DEFAULT_CLIENT)]


def raw_client_settings(name: str = DEFAULT_CLIENT) -> dict[str, Any]:
    """The merged (defaults < top level < CLIENTS[name]) dict, without validation."""
    top = user_settings()
    clients = top.get("CLIENTS") or {}
    if name != DEFAULT_CLIENT and name not in clients:
        known = ", ".join(client_names())
        raise ConfigurationError(f"Unknown Keycloak client {name!r}; configured: {known}.")
    merged = {**DEFAULTS, **{k: v for k, v in top.items() if k != "CLIENTS"}}
    merged.update(clients.get(name) or {})
    return merged


_configs: dict[str, ClientConfig] = {}


def get_client_config(name: str = DEFAULT_CLIENT) -> ClientConfig:
    """The validated config of client ``name``; raises ``ConfigurationError`` when unusable."""
    config = _configs.get(name)
    if config is None:
        config = _configs[name] = build_client_config(name, raw_client_settings(name))
    return config


def build_client_config(name: str, raw: Mapping[str, Any]) -> ClientConfig:
    missing = [key for key in ("SERVER_URL", "REALM", "CLIENT_ID", "CLIENT_SECRET") if not raw[key]]
    if missing:
        raise ConfigurationError(
            f"Keycloak client {name!r} is missing {', '.join(missing)} in {SETTING_NAME}; "
            "run 'manage.py check' for details."
        )
    if raw["ALGORITHM"] not in ALGORITHMS:
        raise ConfigurationError(
            f"Keycloak client {name!r}: ALGORITHM must be one of {', '.join(ALGORITHMS)}."
        )
    invalid = invalid_numbers(raw)
    if invalid:
        raise ConfigurationError(f"Keycloak client {name!r}: {'; '.join(invalid)}.")
    server_url = str(raw["SERVER_URL"]).rstrip("/")
    realm = str(raw["REALM"])
    issuer = realm_issuer(server_url, realm)
    return ClientConfig(
        name=name,
        server_url=server_url,
        realm=realm,
        client_id=str(raw["CLIENT_ID"]),
        client_secret=str(raw["CLIENT_SECRET"]),
        algorithm=raw["ALGORITHM"],
        audience=raw["AUDIENCE"] or issuer,
        token_endpoint=raw["TOKEN_ENDPOINT"] or f"{issuer}/protocol/openid-connect/token",
        scope=raw["SCOPE"] or None,
        assertion_lifetime=int(raw["ASSERTION_LIFETIME"]),
        cache_alias=raw["CACHE_ALIAS"],
        refresh_margin=float(raw["REFRESH_MARGIN"]),
        timeout=_timeout(raw["TIMEOUT"]),
        verify=raw["VERIFY"],
        retries=int(raw["RETRIES"]),
        background_refresh=bool(raw["BACKGROUND_REFRESH"]),
        lock_timeout=float(raw["LOCK_TIMEOUT"]),
    )


def _timeout(value: Any) -> Timeout:
    """``None`` means the default (never "no timeout"); a [connect, read] list becomes the
    tuple requests expects."""
    if value is None:
        return DEFAULT_TIMEOUT
    return (float(value[0]), float(value[1])) if isinstance(value, (list, tuple)) else value


def _is_number(value: Any, *, minimum: float, inclusive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return value >= minimum if inclusive else value > minimum


def invalid_numbers(raw: Mapping[str, Any]) -> list[str]:
    """Describe each numeric setting whose value cannot work (empty when all are fine)."""
    problems = []
    for key in ("ASSERTION_LIFETIME", "LOCK_TIMEOUT"):
        if not _is_number(raw[key], minimum=0, inclusive=False):
            problems.append(f"{key} must be a number of seconds above 0, not {raw[key]!r}")
    for key in ("REFRESH_MARGIN", "RETRIES"):
        if not _is_number(raw[key], minimum=0, inclusive=True):
            problems.append(f"{key} must be a number of at least 0, not {raw[key]!r}")
    timeout = raw["TIMEOUT"]
    pair = isinstance(timeout, (tuple, list))
    parts = timeout if pair else (timeout,)
    if timeout is not None and not (
        len(parts) == (2 if pair else 1)
        and all(_is_number(p, minimum=0, inclusive=False) for p in parts)
    ):
        problems.append(
            f"TIMEOUT must be seconds above 0, or a (connect, read) pair of them, not {timeout!r}"
        )
    return problems


def demo_views_allow_anonymous() -> bool:
    return bool(getattr(settings, DEMO_SETTING_NAME, False))


_reset_callbacks: list[Any] = [_configs.clear]


def on_reset(callback: Any) -> Any:
    """Register ``callback`` to run when the settings change (clears derived state)."""
    _reset_callbacks.append(callback)
    return callback


@receiver(setting_changed)
def _settings_changed(*, setting: str, **kwargs: Any) -> None:
    if setting in (SETTING_NAME, "CACHES"):
        for callback in _reset_callbacks:
            callback()
