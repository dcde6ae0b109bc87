"""What one JWKS URL publishes: the public keys of ONE Keycloak client.

Keycloak accepts an assertion signed by any key in the JWKS its client reads. A set holding the
keys of several Keycloak clients would let one client's key authenticate as another (a
read-only client's key getting a ``manage-users`` token as the writer client). So
``views.jwks`` serves, per URL, the keys of one Keycloak client (the settings' ``CLIENT_ID``,
whichever client names use it); a set of every client's keys only with
``KEYCLOAK_JWT_AUTH_JWKS_ALL_CLIENTS = True``, which a check reports. Within one set a ``kid``
names one key: two keys under one ``kid`` (a top-level ``KEY_ID`` inherited by named clients)
are an error, reported by a check and refused by the view.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from keycloak_jwt_auth.clients import Jwk, clients
from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.settings import DEFAULT_CLIENT, client_names
from keycloak_jwt_auth.settings.checks import TAG
from keycloak_jwt_auth.settings.problems import DUPLICATE_KID, JWKS_OF_ALL_CLIENTS
from keycloak_jwt_auth.settings.rules import shape_problem

ALL_CLIENTS_SETTING = "KEYCLOAK_JWT_AUTH_JWKS_ALL_CLIENTS"


def all_clients_in_one_set() -> bool:
    return getattr(settings, ALL_CLIENTS_SETTING, False) is True


def key_set(client_id: str | None) -> list[Jwk] | None:
    """The keys one URL serves: those of Keycloak client ``client_id`` (None: the default
    client's, or every client's with the opt-in); None when no usable client has that id."""
    if shape_problem() is not None:
        return None
    if client_id is None and all_clients_in_one_set():
        return clients.published_keys()
    wanted = _client_id(DEFAULT_CLIENT) if client_id is None else client_id
    names = [name for name in client_names() if _client_id(name) == wanted]
    if wanted is None or not names:
        return None
    return clients.published_keys(names)


def shared_kids(keys: list[Jwk]) -> list[str]:
    """The ``kid``s that name more than one key in ``keys``."""
    seen: dict[str, Jwk] = {}
    shared = []
    for jwk in keys:
        kid = jwk.get("kid", "")
        if kid in seen and seen[kid] != jwk and kid not in shared:
            shared.append(kid)
        seen.setdefault(kid, jwk)
    return shared


def _client_id(name: str) -> str | None:
    try:
        return clients[name].config.client_id
    except ConfigurationError:
        return None  # the settings checks report it


def _published_sets() -> dict[str, list[Jwk]]:
    """Every set a URL serves, by what names it in the messages."""
    if shape_problem() is not None:
        return {}  # E001 says so
    ids = {id_ for name in client_names() if (id_ := _client_id(name)) is not None}
    sets = {f"the JWKS of client {id_!r}": key_set(id_) or [] for id_ in sorted(ids)}
    if all_clients_in_one_set():
        sets[f"the JWKS of every client ({ALL_CLIENTS_SETTING})"] = clients.published_keys()
    return sets


@register(TAG)
def check_kids_are_unique(**kwargs: Any) -> list[CheckMessage]:
    return [
        Error(
            f"{where} has several keys under kid {kid!r}: Keycloak may verify with the wrong "
            "one, and that client's token requests fail.",
            hint="Give each key its own KEY_ID (a top-level KEY_ID is inherited by named "
            "clients), or remove KEY_ID: the default is the key's thumbprint.",
            id=f"{TAG}.{DUPLICATE_KID.id}",
        )
        for where, keys in _published_sets().items()
        for kid in shared_kids(keys)
    ]


@register(TAG)
def check_one_client_per_set(**kwargs: Any) -> list[CheckMessage]:
    if not all_clients_in_one_set():
        return []
    text = (
        f"{ALL_CLIENTS_SETTING} is True: the JWKS view's URL without a client serves every "
        "client's keys, so one Keycloak client reading it accepts another client's key."
    )
    hint = (
        "Point each Keycloak client at its own URL, .well-known/jwks/<client id>.json, and "
        f"remove {ALL_CLIENTS_SETTING}."
    )
    return [Warning(text, hint=hint, id=f"{TAG}.{JWKS_OF_ALL_CLIENTS.id}")]
