"""Reading the Django settings: client names, and one client's keys merged over the defaults.

Top-level keys configure the client named ``"default"``; ``"CLIENTS"`` adds named clients whose
keys override the top-level ones. Read on every call (so ``override_settings`` just works); the
user's dict is never mutated.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.conf import settings

from keycloak_jwt_auth.exceptions import ConfigurationError

from .defaults import (
    DEFAULT_CLIENT,
    DEFAULTS,
    DEMO_SETTING_NAME,
    DEMO_WRITE_SETTING_NAME,
    SETTING_NAME,
)
from .keyfiles import ClientSettings


def user_settings() -> Mapping[str, Any]:
    return getattr(settings, SETTING_NAME, None) or {}


def client_names() -> list[str]:
    clients = user_settings().get("CLIENTS") or {}
    return [DEFAULT_CLIENT, *(name for name in clients if name != DEFAULT_CLIENT)]


def own_client_settings(name: str) -> Mapping[str, Any]:
    """The keys the user wrote for client ``name`` (top level for the default client)."""
    top = user_settings()
    if name == DEFAULT_CLIENT:
        return {k: v for k, v in top.items() if k != "CLIENTS"}
    return (top.get("CLIENTS") or {}).get(name) or {}


def raw_client_settings(name: str = DEFAULT_CLIENT) -> ClientSettings:
    """The merged (defaults < top level < CLIENTS[name]) dict, without validation."""
    if name not in client_names():
        # No settings dict in this frame: error pages show frame locals, secrets included.
        known = ", ".join(client_names())
        raise ConfigurationError(f"Unknown Keycloak client {name!r}; configured: {known}.")
    named = (user_settings().get("CLIENTS") or {}).get(name) if name != DEFAULT_CLIENT else {}
    return ClientSettings({**DEFAULTS, **own_client_settings(DEFAULT_CLIENT), **(named or {})})


def demo_views_allow_anonymous() -> bool:
    return bool(getattr(settings, DEMO_SETTING_NAME, False))


def demo_write_client() -> str:
    """The client the demo's "create user" form writes with (it needs manage-users)."""
    return str(getattr(settings, DEMO_WRITE_SETTING_NAME, DEFAULT_CLIENT))
