"""The fake's token endpoint: the ``client_credentials`` grant with a signed JWT client assertion,
checked as Keycloak 26.7 checks it (its checks in its order, refused in its words), and the
access tokens it issues. The constants here are Keycloak's, written down from its behaviour, not
taken from the client: the fake must be able to disagree with the client."""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import jwt
import requests

from keycloak_jwt_auth.testing.dpop import (
    PROOF_ALGORITHMS,
    ProofChecker,
    ProofRefused,
    confirmation,
)
from keycloak_jwt_auth.testing.federated import FederatedCheck, Refusal
from keycloak_jwt_auth.testing.realm import FakeClient, Realm
from keycloak_jwt_auth.testing.token_exchange import GRANT_TYPE as EXCHANGE_GRANT
from keycloak_jwt_auth.testing.token_exchange import exchange
from keycloak_jwt_auth.testing.wire import Answer, oauth_error

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
KEY_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
MAX_ASSERTION_AGE = 60  # seconds an assertion's iat may lie in the past
FUTURE_LEEWAY = 15  # ... and in the future


class Refused(Exception):
    """An assertion refused: Keycloak's status, ``error`` and ``error_description``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.answer = oauth_error(status, error, description)


def _invalid(description: str) -> Refused:
    return Refused(400, "invalid_client", description)


UNKNOWN_CLIENT = Refused(401, "invalid_client", "Invalid client or Invalid client credentials")


class TokenEndpoint:
    """Authenticates the realm's clients and issues their access tokens (HS256, with a key only
    this fake knows, so that its Admin API can tell its own tokens). ``clock`` is Keycloak's."""

    def __init__(self, realm: Realm) -> None:
        self.realm = realm
        self.clock: Callable[[], float] = time.time
        self._key = secrets.token_bytes(32)  # signs the access tokens (HS256)
        self._used_jtis: dict[str, float] = {}
        self._lock = threading.Lock()
        self.proofs = ProofChecker(lambda: self.clock())  # DPoP, on Keycloak's clock
        self.federated = FederatedCheck(realm, lambda: self.clock())
        self.exchanges: list[tuple[str, str | None]] = []  # (client id, audience) exchanged

    def token(self, form: Mapping[str, str], dpop_proof: str | None = None) -> Answer:
        """``dpop_proof``: the request's ``DPoP`` header (checked after the client, as
        Keycloak does; a valid one binds the token, required or not)."""
        if "grant_type" not in form:
            return oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
        try:
            client = self.authenticate(form)
        except Refused as refused:
            return refused.answer
        if form.get("grant_type") not in ("client_credentials", EXCHANGE_GRANT):
            return oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")
        jkt = None
        if dpop_proof is not None or client.dpop_bound:
            try:
                jkt = self.proofs.check(dpop_proof, "POST", self.realm.token_endpoint)
            except ProofRefused as refused:
                return self.proofs.token_refusal(refused)
        if form.get("grant_type") == EXCHANGE_GRANT:
            return self._exchange(client, form, jkt)
        if not client.service_accounts:
            description = "Client not enabled to retrieve service account"
            return oauth_error(400, "unauthorized_client", description)
        return Answer(200, self._token_response(client, jkt=jkt))

    def _exchange(self, client: FakeClient, form: Mapping[str, str], jkt: str | None) -> Answer:
        """A standard token exchange (``token_exchange.py``), counted when it succeeds; bound
        to the DPoP key of the request's proof, if any (as Keycloak 26.7 binds it)."""

        def issue(client: FakeClient, audience: str | None) -> dict[str, Any]:
            return self._token_response(client, audience, jkt=jkt)

        answer = exchange(self.realm, client, form, verify=self.verify_token, issue=issue)
        if answer.status == 200:
            with self._lock:
                self.exchanges.append((client.client_id, form.get("audience")))
        return answer

    def authenticate(self, form: Mapping[str, str]) -> FakeClient:
        """The client the form's assertion authenticates, or ``Refused`` as Keycloak 26 words
        it (its checks in its order)."""
        kind = form.get("client_assertion_type")
        if kind is None:
            raise _invalid("Parameter client_assertion_type is missing")
        if kind != ASSERTION_TYPE:
            raise _invalid(
                f"Parameter client_assertion_type has value '{kind}' but expected is "
                f"'{ASSERTION_TYPE}'"
            )
        assertion, named = form.get("client_assertion", ""), form.get("client_id")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            if named in self.realm.clients:
                raise _unauthorized(
                    self.realm.clients[named], "java.lang.IllegalArgumentException: Parsing error"
                ) from None
            raise UNKNOWN_CLIENT from None
        provider = self.federated.provider_of(claims)
        if provider is not None:
            try:
                federated: FakeClient = self.federated.authenticate(
                    provider, assertion, claims, named
                )
                return federated
            except Refusal as refusal:
                raise Refused(refusal.status, "invalid_client", str(refusal)) from None
        client = self._claimed_client(claims, named)
        self._check_signature(client, header, assertion)
        self._check_claims(claims)
        return client

    def _claimed_client(self, claims: Mapping[str, Any], named: str | None) -> FakeClient:
        subject = claims.get("sub")
        if subject is None or claims.get("iss") != subject or subject not in self.realm.clients:
            raise UNKNOWN_CLIENT
        if named is not None and named != subject:
            raise _invalid("client_id parameter does not match authenticated client")
        return self.realm.clients[subject]

    def _check_signature(
        self, client: FakeClient, header: Mapping[str, Any], assertion: str
    ) -> None:
        algorithm = header.get("alg")
        allowed = (client.algorithm,) if client.algorithm else _algorithms_of(client)
        if algorithm not in allowed or algorithm not in _algorithms_of(client):
            raise _invalid("Invalid signature algorithm")
        keys = (
            [client.secret.encode()]
            if client.secret is not None
            else self._public_keys(client, header)
        )
        for key in keys:
            try:
                jwt.PyJWS().decode(assertion, key=key, algorithms=[algorithm])
                return
            except jwt.PyJWTError:
                continue
        raise _unauthorized(client, "Signature on JWT token failed validation")

    def _public_keys(self, client: FakeClient, header: Mapping[str, Any]) -> list[Any]:
        """The key Keycloak 26.7 would pick: the one named by the header's ``kid``, or without
        a kid the first of the algorithm (measured). Unlike Keycloak, the fake reads the JWKS
        URL on every request (Keycloak keeps what it read, re-reading at most every 10 s)."""
        jwks: list[Any] = list(client.public_keys)
        if client.jwks_url:
            try:
                jwks += requests.get(client.jwks_url, timeout=5).json().get("keys", [])
            except (requests.RequestException, ValueError, AttributeError) as exc:
                if not jwks:  # (public_keys stand for what Keycloak read before)
                    # Keycloak says so with the Java exception's text instead.
                    raise _invalid(f"Unable to load public key: {type(exc).__name__}") from None
        kid, algorithm = header.get("kid"), header.get("alg")
        # Pick as Keycloak does: a JWK by kid; without one, the first key of the algorithm.
        if kid is not None:  # a JWK with that kid (a PEM, having none, stands for any kid)
            named = [k for k in jwks if not isinstance(k, dict) or k.get("kid") == kid]
        else:
            named = [
                k for k in jwks if not isinstance(k, dict) or k.get("alg", algorithm) == algorithm
            ]
        if not named or (isinstance(named[0], dict) and named[0].get("use") not in (None, "sig")):
            raise _invalid("Unable to load public key")
        key = named[0]
        if isinstance(key, dict) and key.get("alg", algorithm) != algorithm:
            return []  # Keycloak verifies with the JWK's own alg: the signature fails
        return [jwt.PyJWK(key).key if isinstance(key, dict) else key]

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if len(audiences) > 1:
            raise _invalid("Multiple audiences not allowed")
        if audiences[0] not in self.accepted_audiences():
            raise _invalid("Invalid token audience")
        if "exp" not in claims:
            raise _invalid("Token exp claim is required")
        if claims["exp"] <= now or claims.get("nbf", now) > now:
            raise _invalid("Token is not active")
        issued_at = claims.get("iat")
        if issued_at is not None and now - issued_at > MAX_ASSERTION_AGE:
            raise _invalid("Token was issued too far in the past to be used now")
        if issued_at is not None and issued_at - now > FUTURE_LEEWAY:
            raise _invalid("Token was issued in the future")
        self._use_jti(claims.get("jti"), claims["exp"], now)

    def accepted_audiences(self) -> tuple[str, ...]:
        issuer = self.realm.issuer
        oidc = f"{issuer}/protocol/openid-connect"
        return (
            issuer,
            self.realm.token_endpoint,
            f"{oidc}/ext/par/request",
            f"{oidc}/ext/ciba/auth",
        )

    def _use_jti(self, jti: Any, expires_at: float, now: float) -> None:
        if not jti:
            raise _invalid("Token jti claim is required")
        with self._lock:
            self._used_jtis = {j: exp for j, exp in self._used_jtis.items() if exp > now}
            if jti in self._used_jtis:
                raise _invalid("Token reuse detected")
            self._used_jtis[jti] = expires_at

    def _token_response(
        self, client: FakeClient, audience: str | None = None, jkt: str | None = None
    ) -> dict[str, Any]:
        """A token of ``client``'s service account; with ``audience``, one exchanged for it:
        ``aud`` = that one string, ``resource_access`` reduced to its roles."""
        now, lifespan = int(self.clock()), self.realm.token_lifespan
        claims: dict[str, Any] = {
            "exp": now + lifespan,
            "iat": now,
            "jti": f"trrtcc:{uuid.uuid4()}",
            "iss": self.realm.issuer,
            "sub": client.user_id,
            "typ": "Bearer",
            "azp": client.client_id,
            "acr": "1",
            "scope": "email profile",
            "email_verified": False,
            "preferred_username": f"service-account-{client.client_id}",
        }
        if client.roles:
            claims["aud"] = "realm-management"
            claims["resource_access"] = {"realm-management": {"roles": list(client.roles)}}
        if audience is not None:
            claims["aud"] = audience
            claims["resource_access"] = {
                name: roles for name, roles in claims.get("resource_access", {}).items()
                if name == audience
            }  # fmt: skip
        if jkt is not None:
            claims["cnf"] = confirmation(jkt)
        return {
            "access_token": jwt.encode(claims, self._key, algorithm="HS256"),
            "expires_in": lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer" if jkt is None else "DPoP",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def verify_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token this fake issued; ``jwt.PyJWTError`` otherwise."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key,
            algorithms=["HS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
        )
        if claims["exp"] <= self.clock():
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    def discovery(self) -> dict[str, Any]:
        """The realm's ``.well-known/openid-configuration``, as far as the fake serves it."""
        issuer = self.realm.issuer
        return {
            "issuer": issuer,
            "token_endpoint": self.realm.token_endpoint,
            "jwks_uri": f"{issuer}/protocol/openid-connect/certs",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": [*KEY_ALGORITHMS, *HMAC_ALGORITHMS],
            "dpop_signing_alg_values_supported": list(PROOF_ALGORITHMS),
        }


def _unauthorized(client: FakeClient, reason: str) -> Refused:
    if client.uses_keys:  # Keycloak 26.7 says invalid_client here, unauthorized_client below
        return _invalid(f"Client authentication with signed JWT failed: {reason}")
    # Keycloak 26.7's words, two spaces included.
    reason = reason.replace("on JWT token failed", "on JWT token by client secret  failed")
    description = f"Client authentication with client secret signed JWT failed: {reason}"
    return Refused(400, "unauthorized_client", description)


def _algorithms_of(client: FakeClient) -> tuple[str, ...]:
    return KEY_ALGORITHMS if client.uses_keys else HMAC_ALGORITHMS
