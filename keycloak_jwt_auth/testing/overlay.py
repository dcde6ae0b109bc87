"""The settings a test runs with against a fake: the project's own ``KEYCLOAK_JWT_AUTH`` with
the fake's connection keys laid over it, so ``CACHE_ALIAS``, ``SCOPE``, ``TIMEOUT``... and the
named clients of ``CLIENTS`` stay, each client pointed at the fake."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from keycloak_jwt_auth.testing.realm import FakeClient
from keycloak_jwt_auth.testing.server import FakeKeycloak

# Where and as whom a client connects: the fake sets these, the project's values would point
# elsewhere (its server, its key files, its proxy's token endpoint).
CONNECTION_KEYS = frozenset(
    {
        "SERVER_URL",
        "REALM",
        "CLIENT_ID",
        "AUTH_METHOD",
        "CLIENT_SECRET",
        "FALLBACK_SECRETS",
        "PRIVATE_KEY",
        "PRIVATE_KEY_FILE",
        "NEXT_PRIVATE_KEY",
        "NEXT_PRIVATE_KEY_FILE",
        "KEY_ID",
        "ALGORITHM",
        "AUDIENCE",
        "TOKEN_ENDPOINT",
    }
)


def overlay_settings(fake: FakeKeycloak, project: Any) -> dict[str, Any]:
    """``project`` (the project's ``KEYCLOAK_JWT_AUTH``) pointed at ``fake``. A named client
    with a ``CLIENT_ID`` of its own is registered in the fake (a random secret, the read roles)
    unless it is there already; one without follows the default client."""
    if not isinstance(project, Mapping):
        return fake.settings()
    overlaid = {**_without_connection(project), **fake.settings()}
    named = project.get("CLIENTS")
    if isinstance(named, Mapping):
        overlaid["CLIENTS"] = {
            name: _named_client(fake, own) if isinstance(own, Mapping) else own
            for name, own in named.items()
        }
    return overlaid


def _named_client(fake: FakeKeycloak, own: Mapping[str, Any]) -> dict[str, Any]:
    client_id = own.get("CLIENT_ID")
    if not client_id:
        return _without_connection(own)
    if client_id not in fake.clients:
        fake.add_client(FakeClient(str(client_id), secret=secrets.token_urlsafe(32)))
    return {**_without_connection(own), **fake.settings(str(client_id))}


def _without_connection(values: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in CONNECTION_KEYS}
