"""The fake's federated client authentication ("Signed JWT - Federated", Keycloak 26.6+): a
client authenticates with a JWT from an identity provider the realm trusts, checked as Keycloak
26.7.3 checks it (measured; its words):

- the provider is found by the JWT's ``iss``, the client by the provider's alias and the JWT's
  ``sub`` (attributes ``jwt.credential.issuer`` / ``jwt.credential.sub``); none, a bad
  signature, or a form ``client_id`` naming another client: 401 "Invalid client or Invalid
  client credentials";
- ``aud`` exactly the realm issuer, one audience (400 "Invalid token audience" / "Multiple
  audiences not allowed"); ``exp`` required (400 "Token exp claim is required") and not past
  (400 "Token is not active");
- ``kubernetes`` providers accept the same JWT again up to 3600 s after its ``iat``; ``oidc``
  providers at most 300 s after it (``max_age``, Keycloak's ``fedClientAssertionMaxExp``) and
  once (``jti`` required; ``reuse``: ``supportsClientAssertionReuse``) — 400 "Token was issued
  too far in the past to be used now" / "Token reuse detected".

The provider's keys are read from its ``jwks_url`` (default: its discovery document's).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import requests

KUBERNETES_MAX_AGE = 3600  # seconds after iat a kubernetes provider accepts a JWT
OIDC_MAX_AGE = 300  # ... and an oidc provider, by default


@dataclasses.dataclass
class FakeIdentityProvider:
    """An identity provider of the realm that clients may authenticate through."""

    alias: str
    issuer: str
    kind: str = "kubernetes"  # or "oidc"
    jwks_url: str | None = None  # None: the issuer's discovery document names it
    reuse: bool = False  # oidc: supportsClientAssertionReuse
    max_age: int | None = None  # oidc: fedClientAssertionMaxExp

    @property
    def longest_age(self) -> int:
        if self.kind == "kubernetes":
            return KUBERNETES_MAX_AGE
        return OIDC_MAX_AGE if self.max_age is None else self.max_age

    def representation(self) -> dict[str, Any]:
        """As the Admin API shows it (``GET /identity-provider/instances``)."""
        config = {"issuer": self.issuer}
        if self.kind == "oidc":
            config |= {"jwksUrl": self.jwks_url or "", "supportsClientAssertions": "true"}
        return {"alias": self.alias, "providerId": self.kind, "enabled": True, "config": config}


class Refusal(Exception):
    """(status, description) of a refused federated assertion; the error is ``invalid_client``."""

    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status


UNKNOWN = Refusal(401, "Invalid client or Invalid client credentials")


class FederatedCheck:
    """Federated client authentication over a realm's providers and clients."""

    def __init__(self, realm: Any, clock: Callable[[], float]) -> None:
        self.realm = realm
        self.clock = clock
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def provider_of(self, claims: Mapping[str, Any]) -> FakeIdentityProvider | None:
        issuer = claims.get("iss")
        providers = self.realm.identity_providers.values()
        return next((p for p in providers if p.issuer == issuer), None)

    def authenticate(
        self,
        provider: FakeIdentityProvider,
        assertion: str,
        claims: Mapping[str, Any],
        named: str | None,
    ) -> Any:
        """The client ``assertion`` authenticates, or ``Refusal``."""
        subject = claims.get("sub")
        clients = [
            c
            for c in self.realm.clients.values()
            if c.federated_issuer == provider.alias and c.federated_subject == subject
        ]
        if not clients or (named is not None and named != clients[0].client_id):
            raise UNKNOWN
        self._check_signature(provider, assertion)
        self._check_claims(provider, claims)
        return clients[0]

    def _check_signature(self, provider: FakeIdentityProvider, assertion: str) -> None:
        try:
            url = provider.jwks_url or _discovered_jwks_url(provider.issuer)
            document = requests.get(url, timeout=5).json()
            kid = jwt.get_unverified_header(assertion).get("kid")
            jwk = next(k for k in document["keys"] if kid is None or k.get("kid") == kid)
            algorithm = jwk.get("alg", "RS256")  # (PyJWK.algorithm_name: PyJWT 2.9+ only)
            jwt.PyJWS().decode(assertion, key=jwt.PyJWK(jwk).key, algorithms=[algorithm])
        except (requests.RequestException, ValueError, StopIteration, jwt.PyJWTError):
            raise UNKNOWN from None
        except (KeyError, TypeError, AttributeError):  # a JWKS document that is no JWKS
            raise UNKNOWN from None

    def _check_claims(self, provider: FakeIdentityProvider, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if len(audiences) > 1:
            raise Refusal(400, "Multiple audiences not allowed")
        if audiences[0] != self.realm.issuer:
            raise Refusal(400, "Invalid token audience")
        expires = claims.get("exp")
        if expires is None:
            raise Refusal(400, "Token exp claim is required")
        if not isinstance(expires, (int, float)) or expires <= now or claims.get("nbf", 0) > now:
            raise Refusal(400, "Token is not active")
        if now - claims.get("iat", now) > provider.longest_age:
            raise Refusal(400, "Token was issued too far in the past to be used now")
        if provider.kind == "oidc" and not provider.reuse:
            self._use_once(claims.get("jti"), expires, now)

    def _use_once(self, jti: Any, expires: float, now: float) -> None:
        if not jti:
            raise Refusal(400, "Token jti claim is required")
        with self._lock:
            self._used = {j: exp for j, exp in self._used.items() if exp > now}
            if jti in self._used:
                raise Refusal(400, "Token reuse detected")
            self._used[jti] = expires


def _discovered_jwks_url(issuer: str) -> str:
    discovery = requests.get(f"{issuer}/.well-known/openid-configuration", timeout=5).json()
    return str(discovery["jwks_uri"])
