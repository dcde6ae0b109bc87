"""Reading an external JWT (a Kubernetes service-account token, another issuer's token) that a
``federated_jwt`` client sends as its client assertion: the file, and its claims unverified.

Only Keycloak verifies the signature; the app reads the claims to refuse, before the network,
a token that is no JWT or whose life is over, and to name its issuer in the doctor. The token
itself is a ``Masked`` from the moment it is read; no message here holds it.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any

from keycloak_jwt_auth.masked import Masked

ASSERTION_FILE_LIMIT = 64 * 1024  # bytes; a projected token is ~1 KiB, a larger file is wrong


class NotAJwt(ValueError):
    """The text is no compact JWS with a JSON object of claims (the message never holds it)."""


class UnreadableAssertion(OSError):
    """The assertion file cannot be read (missing, a directory, no permission, too large)."""


def read_assertion_file(path: str | os.PathLike[str]) -> Masked:
    """The JWT in the file at ``path``, surrounding white space stripped (kubelet writes none,
    an editor may add a newline). Raises ``UnreadableAssertion`` (its message says why, not
    which file: the caller names the setting and the path)."""
    try:
        with open(path, "rb") as file:
            data = file.read(ASSERTION_FILE_LIMIT + 1)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UnreadableAssertion(f"cannot be read ({reason})") from None
    if len(data) > ASSERTION_FILE_LIMIT:
        raise UnreadableAssertion(f"is larger than {ASSERTION_FILE_LIMIT} bytes")
    try:
        return Masked(data.decode("ascii").strip())
    except UnicodeDecodeError:
        raise UnreadableAssertion("is not a text file") from None


def unverified_claims(token: str) -> dict[str, Any]:
    """The claims of compact JWS ``token``, its signature not checked. Raises ``NotAJwt``."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3 or not all(parts[:2]):
        raise NotAJwt(f"is not a JWT (a signed JWT has 3 dot-separated parts, not {len(parts)})")
    try:
        header, claims = (json.loads(_b64url(part)) for part in parts[:2])
    except (ValueError, binascii.Error, RecursionError):  # UnicodeDecodeError is a ValueError
        raise NotAJwt("is not a JWT (its header or claims are not base64url JSON)") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise NotAJwt("is not a JWT (its header or claims are not a JSON object)")
    return claims


def remaining_life(claims: dict[str, Any], now: float | None = None) -> float | None:
    """Seconds until ``exp`` (negative: expired), or None when it has no numeric ``exp``."""
    expires = claims.get("exp")
    if isinstance(expires, bool) or not isinstance(expires, (int, float)):
        return None
    return float(expires) - (time.time() if now is None else now)


def audiences(claims: dict[str, Any]) -> list[str]:
    """``aud`` as a list (a JWT may carry one string or several)."""
    audience = claims.get("aud")
    if audience is None:
        return []
    return [str(a) for a in audience] if isinstance(audience, list) else [str(audience)]


def _b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
