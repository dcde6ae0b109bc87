"""The client assertion (RFC 7523 section 2.2): the same claims for every method, signed by
whichever credential the client's authentication method picks (see ``methods.py``)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from typing import Any, Protocol

from keycloak_jwt_auth.settings import ClientConfig

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


class Signer(Protocol):
    """One credential that signs assertion claims."""

    @property
    def name(self) -> str:
        """The setting it comes from ("CLIENT_SECRET", "FALLBACK_SECRETS[0]", "PRIVATE_KEY")."""
        ...

    def sign(self, claims: dict[str, Any]) -> str: ...


class ClientAuthentication(Protocol):
    """A client authentication method: the credentials to try, best first (``hint``: what
    another process learned, see ``accepted``), and what to remember when Keycloak accepted
    one (a hint worth sharing with other processes, or None)."""

    def candidates(self, hint: object = None) -> Sequence[Signer]: ...

    def wants_hint(self) -> bool:
        """Whether ``candidates`` has a choice that a shared hint could improve."""
        ...

    def accepted(self, signer: Signer) -> str | None: ...


def new_jti() -> str:
    """192 random bits, URL-safe: unique per assertion, so Keycloak can refuse replays."""
    return secrets.token_urlsafe(24)


def assertion_claims(config: ClientConfig, *, now: float | None = None) -> dict[str, Any]:
    """Fresh claims: ``iss`` = ``sub`` = client id, one ``aud``, a new ``jti``.

    ``now`` exists for tests that need an old ``iat``; callers never reuse an assertion.
    """
    issued_at = int(time.time() if now is None else now)
    return {
        "iss": config.client_id,
        "sub": config.client_id,
        # One string: Keycloak 26.2+ rejects an assertion with several audiences.
        "aud": config.audience,
        "iat": issued_at,
        "exp": issued_at + config.assertion_lifetime,
        "jti": new_jti(),
    }
