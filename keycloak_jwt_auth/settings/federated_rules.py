"""The rules of a ``federated_jwt`` client: one source of the external JWT, a usable JWT in
``ASSERTION_FILE``, an importable ``ASSERTION_PROVIDER``, and no secret or key beside them.

The file is read at every check (it rotates); the provider is never called here: an external
issuer's assertion may be single use, and a check must not spend one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from django.utils.module_loading import import_string
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.federation import (
    NotAJwt,
    UnreadableAssertion,
    audiences,
    read_assertion_file,
    remaining_life,
    unverified_claims,
)

from .defaults import FEDERATED_METHOD, KEY_SETTINGS, realm_issuer
from .problems import (
    BAD_ASSERTION_PROVIDER,
    EXPIRED_ASSERTION,
    NO_ASSERTION_SOURCE,
    NOT_A_JWT,
    SECRET_WITH_FEDERATED,
    UNREADABLE_ASSERTION,
    UNUSED_ASSERTION,
    WRONG_ASSERTION_AUDIENCE,
    Problem,
)

SOURCES = ("ASSERTION_FILE", "ASSERTION_PROVIDER")
SOURCE_HINT = (
    "Set ASSERTION_FILE to the path of the projected service-account token (e.g. "
    "'/var/run/secrets/keycloak/token'), or ASSERTION_PROVIDER to the dotted path of a callable "
    "returning the JWT; see the README, 'Running on Kubernetes without a secret'."
)
AUDIENCE_HINT = (
    "The token's audience must be exactly the realm issuer: in the pod's projected volume set "
    "serviceAccountToken.audience to {issuer!r} (one audience, no trailing slash)."
)
FILE_HINT = (
    "Check the projected volume and its mount path; the kubelet writes the token before the "
    "container starts and replaces it before it expires."
)
CREDENTIALS = ("CLIENT_SECRET", "FALLBACK_SECRETS", *KEY_SETTINGS, *KEY_SETTINGS.values())


def is_federated(raw: Mapping[str, Any]) -> bool:
    return bool(raw["AUTH_METHOD"] == FEDERATED_METHOD)


@sensitive_variables()
def assertion_source(raw: Mapping[str, Any]) -> Iterator[Problem]:
    """Exactly one of ``ASSERTION_FILE`` and ``ASSERTION_PROVIDER``, and it works."""
    given = [key for key in SOURCES if raw[key]]
    if not is_federated(raw):
        for key in given:
            text = f"is set but not used: AUTH_METHOD is {raw['AUTH_METHOD']!r}"
            yield Problem(
                UNUSED_ASSERTION, key, text, "Remove it, or set AUTH_METHOD to 'federated_jwt'."
            )
        return
    if len(given) != 1:
        text = (
            "and ASSERTION_PROVIDER are both set"
            if given
            else "is missing: federated_jwt needs it or ASSERTION_PROVIDER"
        )
        yield Problem(NO_ASSERTION_SOURCE, "ASSERTION_FILE", text, SOURCE_HINT)
    elif given == ["ASSERTION_FILE"]:
        yield from file_problems(raw)
    else:
        yield from provider_problems(raw["ASSERTION_PROVIDER"])


@sensitive_variables()
def file_problems(raw: Mapping[str, Any]) -> Iterator[Problem]:
    path = raw["ASSERTION_FILE"]
    if not isinstance(path, (str, os.PathLike)):
        text = f"must be a path (a str or os.PathLike), not {type(path).__name__}"
        yield Problem(UNREADABLE_ASSERTION, "ASSERTION_FILE", text, FILE_HINT)
        return
    try:
        claims = unverified_claims(read_assertion_file(path))
    except UnreadableAssertion as exc:
        text = f"({os.fspath(path)!r}) {exc}"
        yield Problem(UNREADABLE_ASSERTION, "ASSERTION_FILE", text, FILE_HINT)
        return
    except NotAJwt as exc:
        yield Problem(NOT_A_JWT, "ASSERTION_FILE", f"({os.fspath(path)!r}) {exc}", FILE_HINT)
        return
    yield from audience_problems(raw, claims)
    life = remaining_life(claims)
    if life is None or life <= 0:
        said = (
            "has no exp claim (Keycloak requires one)"
            if life is None
            else f"expired {-life:.0f} s ago"
        )
        text = f"({os.fspath(path)!r}) holds a JWT that {said}"
        yield Problem(EXPIRED_ASSERTION, "ASSERTION_FILE", text, FILE_HINT)


def audience_problems(raw: Mapping[str, Any], claims: dict[str, Any]) -> Iterator[Problem]:
    server_url, realm = raw["SERVER_URL"], raw["REALM"]
    if not (isinstance(server_url, str) and isinstance(realm, str) and server_url and realm):
        return  # E002/E003 say so
    expected = (
        raw["AUDIENCE"]
        if isinstance(raw["AUDIENCE"], str) and raw["AUDIENCE"]
        else realm_issuer(server_url, realm)
    )
    if audiences(claims) != [expected]:
        found = audiences(claims)
        text = f"holds a JWT whose aud is {found!r}, not [{expected!r}]: Keycloak refuses it"
        yield Problem(
            WRONG_ASSERTION_AUDIENCE, "ASSERTION_FILE", text, AUDIENCE_HINT.format(issuer=expected)
        )


def provider_problems(dotted: Any) -> Iterator[Problem]:
    hint = "Give the dotted path of a function taking no argument, e.g. 'myproject.tokens.get_jwt'."
    if not isinstance(dotted, str):
        text = f"must be a dotted path (a str), not {type(dotted).__name__}"
        yield Problem(BAD_ASSERTION_PROVIDER, "ASSERTION_PROVIDER", text, hint)
        return
    try:
        provider = import_string(dotted)
    except ImportError as exc:
        text = f"is {dotted!r}, which cannot be imported ({exc})"
        yield Problem(BAD_ASSERTION_PROVIDER, "ASSERTION_PROVIDER", text, hint)
        return
    if not callable(provider):
        text = f"is {dotted!r}, a {type(provider).__name__}, not a callable"
        yield Problem(BAD_ASSERTION_PROVIDER, "ASSERTION_PROVIDER", text, hint)


def credentials_with_federated(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if not is_federated(raw):
        return
    for key in CREDENTIALS:
        if raw[key]:
            yield Problem(
                SECRET_WITH_FEDERATED,
                key,
                "is set but not used: AUTH_METHOD is 'federated_jwt', which keeps no secret "
                "or key in the app",
                "Remove it (and from the environment it is read from).",
            )
