"""The ``client_secret_jwt`` client assertion (RFC 7523 section 2.2), signed with the secret."""

from __future__ import annotations

import secrets
import time

import jwt

from .conf import ClientConfig

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def new_jti() -> str:
    """192 random bits, URL-safe: unique per assertion, so Keycloak can refuse replays."""
    return secrets.token_urlsafe(24)


def build_client_assertion(config: ClientConfig, *, now: float | None = None) -> str:
    """A fresh assertion: ``iss`` = ``sub`` = client id, one ``aud``, new ``jti``.

    ``now`` exists for tests that need an old ``iat``; callers never reuse an assertion.
    """
    issued_at = int(time.time() if now is None else now)
    claims = {
        "iss": config.client_id,
        "sub": config.client_id,
        # One string: Keycloak 26.2+ rejects an assertion with several audiences.
        "aud": config.audience,
        "iat": issued_at,
        "exp": issued_at + config.assertion_lifetime,
        "jti": new_jti(),
    }
    return jwt.encode(claims, config.client_secret.encode(), algorithm=config.algorithm)
