"""Client authentication: the client assertion (RFC 7523 section 2.2) and who signs it.

The claims are the same for every method; a method is a strategy that only signs them. Today:
``client_secret_jwt`` (HMAC with the client secret). Nothing outside this module knows which
method a client uses.
"""

from __future__ import annotations

import secrets
import time
from typing import Any, Protocol

import jwt

from .conf import ClientConfig
from .masked import Masked

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class ClientAuthentication(Protocol):
    """Signs a client assertion's claims as one client authentication method does."""

    def sign(self, claims: dict[str, Any]) -> str: ...


class ClientSecretJwt:
    """``client_secret_jwt``: HS256/384/512 with the client secret, which never leaves."""

    def __init__(self, secret: str, algorithm: str) -> None:
        self._key = secret.encode()
        self.algorithm = algorithm

    def __repr__(self) -> str:
        return f"ClientSecretJwt(algorithm={self.algorithm!r}, secret='********')"

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self._key, algorithm=self.algorithm)


def client_authentication(config: ClientConfig) -> ClientAuthentication:
    """The client authentication method ``config`` asks for."""
    return ClientSecretJwt(config.client_secret, config.algorithm)


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
    return Masked(client_authentication(config).sign(claims))
