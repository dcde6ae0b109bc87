"""The fake's DPoP (RFC 9449): proofs checked as Keycloak 26.7 checks them, in its words, and
bound tokens checked on its Admin API. Keycloak's constants are written down here from its
behaviour; nothing is imported from the client, so that the fake can disagree with it.

Keycloak sends no ``DPoP-Nonce`` (26.7); other servers do. ``nonce_mode`` makes the fake demand
one, so that the client's nonce retries are tested: the token endpoint answers 400
``use_dpop_nonce``, the Admin API 401 ``WWW-Authenticate: DPoP error="use_dpop_nonce"``, both
with a ``DPoP-Nonce`` header.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import jwt

from keycloak_jwt_auth.testing.wire import Answer, oauth_error

PROOF_TYP = "dpop+jwt"
PROOF_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
PROOF_LIFETIME = 10  # seconds a proof lives after its iat ...
CLOCK_SKEW = 15  # ... give or take this much: Keycloak's window is iat - 15 .. iat + 25
PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "k")
THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
NONCE_CHALLENGE = (  # what a resource server that wants a nonce says (Keycloak does not)
    'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"'
)


class ProofRefused(Exception):
    """A proof refused, in Keycloak's words; ``nonce``: refused for want of the current nonce."""

    def __init__(self, description: str, *, nonce: bool = False) -> None:
        super().__init__(description)
        self.description = description
        self.nonce = nonce


def b64_sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    return b64_sha256(json.dumps(members, sort_keys=True, separators=(",", ":")))


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class ProofChecker:
    """Checks DPoP proofs for one fake: signature by the header's public JWK, ``htm``, ``htu``
    (without query), ``iat`` window, single-use ``jti``, ``ath`` on resource calls and, in
    ``nonce_mode``, the current nonce. ``clock`` is Keycloak's."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.nonce_mode = False
        self.nonce = secrets.token_urlsafe(16)
        self.nonce_challenges = 0  # answers that asked for a nonce
        self._used: dict[str, float] = {}
        self._lock = threading.Lock()

    def rotate_nonce(self) -> str:
        self.nonce = secrets.token_urlsafe(16)
        return self.nonce

    def check(
        self, proof: str | None, method: str, url: str, *, access_token: str | None = None
    ) -> str:
        """The thumbprint of the key that signed ``proof``; ``ProofRefused`` otherwise."""
        if not proof:
            raise ProofRefused("DPoP proof is missing")
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError:
            raise ProofRefused("DPoP proof is not a valid JWT") from None
        jwk = header.get("jwk")
        if header.get("typ") != PROOF_TYP:
            raise ProofRefused("Invalid or missing type in DPoP header: " + str(header.get("typ")))
        if header.get("alg") not in PROOF_ALGORITHMS:
            raise ProofRefused(f"Unsupported DPoP algorithm: {header.get('alg')}")
        if not isinstance(jwk, dict) or jwk.get("kty") not in THUMBPRINT_MEMBERS:
            raise ProofRefused("No JWK in DPoP header")
        if any(member in jwk for member in PRIVATE_MEMBERS):
            raise ProofRefused("Private key material must not be present in DPoP JWK")
        try:
            claims = jwt.decode(
                proof,
                jwt.PyJWK(jwk).key,
                algorithms=[header["alg"]],
                options={"verify_exp": False, "verify_iat": False, "verify_aud": False},
            )
        except jwt.PyJWTError:
            raise ProofRefused("DPoP verification failure") from None
        self._check_claims(claims, method, url, access_token)
        return jwk_thumbprint(jwk)

    def _check_claims(
        self, claims: Mapping[str, Any], method: str, url: str, access_token: str | None
    ) -> None:
        if not all(claims.get(name) for name in ("jti", "htm", "htu", "iat")):
            raise ProofRefused("DPoP mandatory claims are missing")
        if claims["htm"] != method:
            raise ProofRefused("DPoP HTTP method mismatch")
        if _without_query(str(claims["htu"])) != _without_query(url):
            raise ProofRefused("DPoP HTTP URL mismatch")
        now = self.clock()
        if not (now - PROOF_LIFETIME - CLOCK_SKEW <= claims["iat"] <= now + CLOCK_SKEW):
            raise ProofRefused("DPoP proof is not active")
        if access_token is not None and claims.get("ath") != b64_sha256(access_token):
            raise ProofRefused("DPoP proof access token hash mismatch")
        if self.nonce_mode and claims.get("nonce") != self.nonce:
            raise ProofRefused("DPoP nonce missing or invalid", nonce=True)
        with self._lock:
            self._used = {jti: at for jti, at in self._used.items() if at > now}
            if claims["jti"] in self._used:
                raise ProofRefused("DPoP proof has already been used")
            self._used[claims["jti"]] = now + PROOF_LIFETIME + 2 * CLOCK_SKEW

    def token_refusal(self, refused: ProofRefused) -> Answer:
        """The token endpoint's answer to a refused proof."""
        if refused.nonce:
            self.nonce_challenges += 1
            answer = oauth_error(400, "use_dpop_nonce", refused.description)
            return Answer(answer.status, answer.body, headers={"DPoP-Nonce": self.nonce})
        return oauth_error(400, "invalid_request", refused.description)

    def admin_token(
        self,
        authorization: str,
        proof: str | None,
        method: str,
        url: str,
        verify_token: Callable[[str], Mapping[str, Any]],
    ) -> str | Answer:
        """The access token an Admin API call may go on with, or its 401: a bound token only
        with the ``DPoP`` scheme and a proof by its key, an unbound one only as ``Bearer``.
        Keycloak's Admin API says nothing more (no ``WWW-Authenticate``) unless a nonce is
        wanted."""
        scheme, _, token = authorization.partition(" ")
        try:
            cnf = verify_token(token).get("cnf")
        except jwt.PyJWTError:
            return token  # the Admin API refuses it as it refuses any token it did not issue
        bound = cnf.get("jkt") if isinstance(cnf, dict) else None
        unauthorized = Answer(401, {"error": "HTTP 401 Unauthorized"})
        if scheme.lower() != ("dpop" if bound else "bearer"):
            return unauthorized
        if bound is None:
            return token
        try:
            jkt = self.check(proof, method, url, access_token=token)
        except ProofRefused as refused:
            if not refused.nonce:
                return unauthorized
            self.nonce_challenges += 1
            headers = {"WWW-Authenticate": NONCE_CHALLENGE, "DPoP-Nonce": self.nonce}
            return Answer(401, unauthorized.body, headers=headers)
        return token if jkt == bound else unauthorized


def confirmation(jkt: str) -> dict[str, str]:
    """The ``cnf`` claim of a token bound to the key ``jkt`` names, as Keycloak writes it."""
    return {"jkt": jkt, "kc-jkt-type": "DPoP"}
