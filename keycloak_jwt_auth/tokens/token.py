"""The access token as a value object, and the rules any token must pass to be used.

The same rules check a token response from Keycloak and a token read back from the shared
cache: whatever is not a usable token (an empty or header-breaking value, an infinite or absurd
lifetime, another token type; for a DPoP client, a token not bound to its key) is refused with
the reason.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import time
from datetime import datetime, timezone
from typing import Any, TypeGuard

import jwt

from keycloak_jwt_auth.masked import Masked

MAX_LIFETIME = 366 * 24 * 3600.0  # seconds: a token said to live longer is absurd
# seconds: a token that lives shorter would cost a token request per call (renewal margins)
MIN_LIFETIME = 5.0
MAX_TOKEN_LENGTH = 16 * 1024
EXPIRY_LEEWAY = 1.0  # seconds before expires_at that a token stops being handed out
DPOP = "DPoP"  # the token type (and Authorization scheme) of a DPoP-bound token
TOKEN_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~+/]+=*")  # RFC 6750 b64token: header-safe


@dataclasses.dataclass(frozen=True)
class AccessToken:
    """An access token and when it expires (``expires_at`` is epoch seconds, local clock)."""

    value: str = dataclasses.field(repr=False)
    expires_at: float
    token_type: str = "Bearer"
    scope: str | None = None
    issued_at: float = dataclasses.field(default_factory=time.time)

    @classmethod
    def checked(
        cls,
        value: Any,
        *,
        issued_at: Any,
        expires_in: Any,
        token_type: Any,
        scope: Any,
        bound_to: str | None = None,
    ) -> AccessToken:
        """A token from untrusted fields; ``ValueError`` naming the first field that is wrong.
        ``bound_to``: the thumbprint of a DPoP client's key, which the token must be bound to."""
        if not isinstance(value, str) or not value:
            raise ValueError("no access_token")
        if len(value) > MAX_TOKEN_LENGTH or not TOKEN_CHARACTERS.fullmatch(value):
            raise ValueError("an access_token that is not a Bearer token (length, characters)")
        if not _is_seconds(issued_at) or not (_is_seconds(expires_in) and expires_in > 0):
            raise ValueError("no usable expires_in")
        if expires_in < MIN_LIFETIME:
            raise ValueError(f"a tiny expires_in ({expires_in:g} s, under {MIN_LIFETIME:g} s)")
        if expires_in > MAX_LIFETIME:
            raise ValueError(f"an absurd expires_in ({expires_in:.0f} s, above a year)")
        if abs(issued_at - time.time()) > MAX_LIFETIME:
            raise ValueError("an issue time more than a year away from now")
        expected = "Bearer" if bound_to is None else DPOP
        if not isinstance(token_type, str) or token_type.lower() != expected.lower():
            if bound_to is not None and str(token_type).lower() == "bearer":
                raise ValueError(
                    "token_type Bearer for a DPoP client: the server ignored the proof"
                )
            raise ValueError(f"token_type {str(token_type)[:40]!r} instead of {expected}")
        if scope is not None and not isinstance(scope, str):
            raise ValueError("a scope that is not a string")
        if bound_to is not None:
            _check_binding(value, bound_to)
        return cls(
            value=Masked(value),
            expires_at=float(issued_at) + float(expires_in),
            token_type=expected,
            scope=scope,
            issued_at=float(issued_at),
        )

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    @property
    def expires_at_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, tz=timezone.utc)

    def expires_in(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    @property
    def usable_until(self) -> float:
        """When this app stops handing the token out: a little before it expires, so that it
        does not expire on its way to the API."""
        return self.expires_at - min(EXPIRY_LEEWAY, self.lifetime / 10)

    def renew_from(self, margin: float) -> float:
        """When renewal starts: ``margin`` early, but never more than a third of the lifetime
        early, so that a short-lived token is not renewed on every call."""
        return self.expires_at - min(margin, self.lifetime / 3)

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return f"{self.token_type} {self.value}"

    def unverified_claims(self) -> dict[str, Any]:
        """The claims, decoded WITHOUT checking the signature: for showing, never for trusting.
        Raises ``jwt.DecodeError`` when the token is not a JWT."""
        claims: dict[str, Any] = jwt.decode(self.value, options={"verify_signature": False})
        return claims

    def status(self, *, from_cache: bool) -> dict[str, Any]:
        """What may be shown of the token besides its value: when it expires, where it came from."""
        return {
            "expires_in": int(self.expires_in()),
            "expires_at": self.expires_at_datetime.isoformat(),
            "from_cache": from_cache,
        }

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: Any, *, bound_to: str | None = None) -> AccessToken:
        """A token stored by ``to_json``; ``ValueError`` when it is not one (foreign, corrupt,
        absurd, not bound to ``bound_to``: whatever a shared cache may hold)."""
        if not isinstance(data, (str, bytes)) or len(data) > 2 * MAX_TOKEN_LENGTH:
            raise ValueError("not a stored token")
        try:
            fields = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise ValueError("not JSON") from exc
        if not isinstance(fields, dict):
            raise ValueError("not a JSON object")
        issued_at, expires_at = fields.get("issued_at"), fields.get("expires_at")
        if not (_is_seconds(issued_at) and _is_seconds(expires_at)):
            raise ValueError("no usable issued_at and expires_at")
        return cls.checked(
            fields.get("value"),
            issued_at=issued_at,
            expires_in=expires_at - issued_at,
            token_type=fields.get("token_type"),
            scope=fields.get("scope"),
            bound_to=bound_to,
        )


def _check_binding(value: str, jkt: str) -> None:
    """A JWT access token must name the DPoP key in ``cnf.jkt`` (an opaque one cannot be
    checked here: the resource server checks it)."""
    try:
        claims = jwt.decode(value, options={"verify_signature": False})
    except jwt.DecodeError:
        return
    cnf = claims.get("cnf")
    bound = cnf.get("jkt") if isinstance(cnf, dict) else None
    if bound != jkt:
        raise ValueError(
            "a cnf.jkt that is not the DPoP key's thumbprint"
            if bound
            else "no cnf.jkt: the token is not bound to the DPoP key"
        )


def _is_seconds(value: Any) -> TypeGuard[float]:
    """A finite int or float (not a bool): JSON can carry 1e400 or a 400-digit integer."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
