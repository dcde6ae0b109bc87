"""Client authentication methods: strategies that pick the credential signing the assertion.

``client_secret_jwt`` signs with HMAC and the client secret (or one of ``FALLBACK_SECRETS``
while a secret is being rotated); ``private_key_jwt`` with the client's private key (Keycloak
reads the public key from the JWKS this app serves); ``federated_jwt`` sends another issuer's
JWT (``federated.py``). Nothing outside this package knows which
method a client uses.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import jwt
from django.utils.crypto import salted_hmac

from keycloak_jwt_auth.client_auth.assertion import ClientAuthentication, Signer, assertion_claims
from keycloak_jwt_auth.client_auth.federated import FederatedJwt
from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.keys import load_private_key, public_jwk
from keycloak_jwt_auth.masked import Masked, MaskedBytes
from keycloak_jwt_auth.settings import FEDERATED_METHOD, KEY_METHOD, SECRET_METHOD, ClientConfig

logger = logging.getLogger(__name__)


class SecretSigner:
    """HS256/384/512 with one secret; ``position`` 0 is ``CLIENT_SECRET``, then the fallbacks."""

    def __init__(self, secret: str, algorithm: str, position: int, typ: str) -> None:
        self._key = MaskedBytes(secret.encode())  # PyJWT's frames hold it as it is given
        self.algorithm = algorithm
        self.position = position
        self.typ = typ

    @functools.cached_property
    def fingerprint(self) -> str:
        """Names the secret across processes without revealing it (keyed with SECRET_KEY; only
        computed when there are fallback secrets to choose from)."""
        # SHA-256 by name, not Django's default (SHA-1, changing in 6.1): processes on different
        # Django versions that share the cache name the same secret alike.
        digest = salted_hmac("keycloak_jwt_auth.secret", self._key, algorithm="sha256")
        return digest.hexdigest()[:32]

    def __repr__(self) -> str:
        return f"SecretSigner(algorithm={self.algorithm!r}, position={self.position})"

    @property
    def name(self) -> str:
        return "CLIENT_SECRET" if self.position == 0 else f"FALLBACK_SECRETS[{self.position - 1}]"

    def sign(self, claims: dict[str, Any]) -> str:
        return signed(self.name, claims, self._key, self.algorithm, {"typ": self.typ})


def signed(name: str, claims: dict[str, Any], key: Any, algorithm: str, headers: Any) -> str:
    """``jwt.encode``; whatever it raises (a key-length warning made an error, say) becomes an
    error naming the setting only: PyJWT's frames hold the key, so none of them is chained."""
    try:
        return jwt.encode(claims, key, algorithm=algorithm, headers=headers)
    except Exception as exc:
        kind, text = type(exc).__name__, str(exc)[:200]
        raise ConfigurationError(f"Cannot sign the assertion with {name}: {kind}: {text}") from None


class ClientSecretJwt:
    """``client_secret_jwt``: the secret never leaves. With ``FALLBACK_SECRETS``, a refused
    signature is retried with the next secret, and the one Keycloak accepts is tried first from
    then on, in this process and (by fingerprint) in every process sharing the cache."""

    def __init__(self, config: ClientConfig) -> None:
        every_secret = (config.client_secret, *config.fallback_secrets)
        self.client = config.name
        self.signers = [
            SecretSigner(secret, config.algorithm, position, config.assertion_typ)
            for position, secret in enumerate(every_secret)
        ]
        self.preferred = self.signers[0]

    def __repr__(self) -> str:
        return f"ClientSecretJwt(client={self.client!r}, secrets={len(self.signers)})"

    def candidates(self, hint: object = None) -> list[SecretSigner]:
        shared = [s for s in self.signers if hint and s.fingerprint == hint]
        first = shared[0] if shared else self.preferred
        return [first, *(signer for signer in self.signers if signer is not first)]

    def wants_hint(self) -> bool:
        return len(self.signers) > 1

    def accepted(self, signer: Signer) -> str | None:
        """Remember ``signer``; its fingerprint when there is a choice worth sharing."""
        assert isinstance(signer, SecretSigner)
        if signer is not self.preferred:
            self.preferred = signer
            logger.log(
                logging.WARNING if signer.position else logging.INFO,
                "Keycloak accepted %s of client %s%s",
                signer.name,
                self.client,
                ": finish the secret rotation (see README, 'Rotating the client secret')"
                if signer.position
                else "",
            )
        return signer.fingerprint if len(self.signers) > 1 else None


class KeySigner:
    """One private key; ``kid`` names its public key in the JWKS."""

    def __init__(self, pem: str, algorithm: str, kid: str | None, typ: str, name: str) -> None:
        self._key = load_private_key(pem)
        self.algorithm = algorithm
        self.jwk = public_jwk(self._key, algorithm, kid)
        self.headers = {"kid": self.jwk["kid"], "typ": typ}
        self.name = name

    def __repr__(self) -> str:
        return f"KeySigner(algorithm={self.algorithm!r}, kid={self.jwk['kid']!r})"

    def sign(self, claims: dict[str, Any]) -> str:
        return signed(self.name, claims, self._key, self.algorithm, self.headers)


class PrivateKeyJwt:
    """``private_key_jwt``: the private key signs; Keycloak checks with the public key it reads
    from the JWKS (``kid`` names it there). The other published key (``NEXT_PRIVATE_KEY``) signs
    only when Keycloak refuses the current one: during a rotation Keycloak re-reads the JWKS for
    an unknown ``kid`` at most every 10 seconds, so a new key can be refused for that long."""

    def __init__(self, config: ClientConfig) -> None:
        assert config.private_key is not None  # conf refuses private_key_jwt without a key
        algorithm, typ = config.algorithm, config.assertion_typ
        self.client = config.name
        self.current = KeySigner(config.private_key, algorithm, config.key_id, typ, "PRIVATE_KEY")
        self.signers = [self.current]
        if config.next_private_key:
            # Its kid is always its thumbprint: KEY_ID names the current key.
            name = "NEXT_PRIVATE_KEY"
            self.signers.append(KeySigner(config.next_private_key, algorithm, None, typ, name))

    def __repr__(self) -> str:
        return f"PrivateKeyJwt(client={self.client!r}, kids={[s.jwk['kid'] for s in self.signers]})"

    def wants_hint(self) -> bool:
        return False

    def candidates(self, hint: object = None) -> list[KeySigner]:
        return self.signers  # the current key first, always: it is the one Keycloak should know

    def accepted(self, signer: Signer) -> None:
        if signer is not self.current:
            logger.warning(
                "Keycloak refused PRIVATE_KEY of client %s and accepted NEXT_PRIVATE_KEY: it "
                "has not read the current key from the JWKS URL yet (it re-reads it at most "
                "every 10 seconds)",
                self.client,
            )
        return None


METHODS: dict[str, Callable[[ClientConfig], ClientAuthentication]] = {
    SECRET_METHOD: ClientSecretJwt,
    KEY_METHOD: PrivateKeyJwt,
    FEDERATED_METHOD: FederatedJwt,
}


def client_authentication(config: ClientConfig) -> ClientAuthentication:
    """A new instance of the method ``config`` asks for (keys are parsed here: the per-client
    handler builds it once and keeps it, so the secret Keycloak accepted is remembered)."""
    return METHODS[config.auth_method](config)


def build_client_assertion(
    config: ClientConfig, signer: Signer | None = None, *, now: float | None = None
) -> str:
    """A fresh assertion signed by ``signer`` (default: the first credential of a freshly
    built method, for tests and tools; the token flow always names its signer)."""
    signer = signer or client_authentication(config).candidates()[0]
    return Masked(signer.sign(assertion_claims(config, now=now)))
