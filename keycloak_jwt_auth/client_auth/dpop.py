"""DPoP (RFC 9449): the proofs that bind a client's tokens to its configured key.

The key is configured (``DPOP_KEY`` / ``DPOP_KEY_FILE``), so every process signs with the same
key and a bound token in the shared cache is usable by all of them; only the key's thumbprint
(``jkt``) ever leaves the process, never the private key.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

from keycloak_jwt_auth.client_auth.assertion import new_jti
from keycloak_jwt_auth.keys import load_private_key, public_jwk, thumbprint
from keycloak_jwt_auth.masked import Masked

PROOF_TYP = "dpop+jwt"
NONCE_ERROR = "use_dpop_nonce"
NONCE_HEADER = "DPoP-Nonce"
NONCES_KEPT = 64  # origins whose last nonce is remembered (a bound on what servers can add)


def htu(url: str) -> str:
    """The URL a proof names: without query and fragment (RFC 9449 section 4.2)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def access_token_hash(token: str) -> str:
    """``ath``: base64url SHA-256 of the access token."""
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """A header of a plain mapping, whatever its case."""
    lowered = name.lower()
    return next((value for key, value in headers.items() if key.lower() == lowered), None)


class DPoPSigner:
    """One client's DPoP key: signs a fresh proof per request, and remembers the last nonce
    each server (origin) asked for."""

    def __init__(self, pem: str, algorithm: str) -> None:
        self._key = load_private_key(pem)
        self.algorithm = algorithm
        jwk = public_jwk(self._key, algorithm)
        # Public members only: a private one in the header makes Keycloak refuse the proof.
        self.jwk = {name: jwk[name] for name in jwk if name not in ("kid", "alg", "use")}
        self.jkt = thumbprint(self.jwk)
        self.headers: dict[str, Any] = {"typ": PROOF_TYP, "jwk": self.jwk}
        self._nonces: dict[str, str] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DPoPSigner(algorithm={self.algorithm!r}, jkt={self.jkt!r})"

    def proof(
        self, method: str, url: str, *, access_token: str | None = None, now: float | None = None
    ) -> str:
        """A new proof for one ``method`` ``url`` request (``access_token``: a resource call,
        which the proof names by hash), with the nonce last learned from that server."""
        claims: dict[str, Any] = {
            "jti": new_jti(),
            "htm": method.upper(),
            "htu": htu(url),
            "iat": int(time.time() if now is None else now),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        nonce = self._nonces.get(origin(url))
        if nonce is not None:
            claims["nonce"] = nonce
        return Masked(jwt.encode(claims, self._key, algorithm=self.algorithm, headers=self.headers))

    def learn_nonce(self, url: str, headers: Mapping[str, str]) -> bool:
        """Keep the ``DPoP-Nonce`` a server sent (for its origin); whether it is a new one."""
        nonce = header_value(headers, NONCE_HEADER)
        if not nonce:
            return False
        key = origin(url)
        with self._lock:
            if self._nonces.get(key) == nonce:
                return False
            if key not in self._nonces and len(self._nonces) >= NONCES_KEPT:
                self._nonces.pop(next(iter(self._nonces)))
            self._nonces[key] = nonce
        return True

    def asks_for_nonce(self, url: str, status: int, headers: Mapping[str, str]) -> bool:
        """A resource server's 401 ``WWW-Authenticate: DPoP error="use_dpop_nonce"`` with a new
        nonce (learned here): worth one retry of the call."""
        challenge = header_value(headers, "WWW-Authenticate") or ""
        return (
            status == 401
            and challenge.lower().startswith("dpop")
            and NONCE_ERROR in challenge
            and self.learn_nonce(url, headers)
        )


def dpop_signer(pem: str | None, algorithm: str | None) -> DPoPSigner | None:
    """The signer of a configured key, or None (a Bearer client)."""
    return None if pem is None or algorithm is None else DPoPSigner(pem, algorithm)
