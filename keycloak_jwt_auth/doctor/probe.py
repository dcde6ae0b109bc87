"""What ``keycloak_doctor`` learns by reaching Keycloak as one client, and the checks that learn it.

A ``Probe`` carries what the checks find out, in order: the discovery document, a token got
with the app's own credentials, the clock skew measured on that exchange. The checks here judge
the server, the realm, the token request and the clock; ``doctor.py`` runs them with the checks
of the client's configuration. No finding carries the secret, an assertion or a token.
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests

from keycloak_jwt_auth.client_auth import client_authentication
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner, dpop_signer
from keycloak_jwt_auth.exceptions import (
    KeycloakJWTAuthError,
    KeycloakUnavailableError,
    OAuthError,
    TLSError,
)
from keycloak_jwt_auth.http.transport import TOKEN_BODY_LIMIT, exchange, json_body, run_flow
from keycloak_jwt_auth.settings import FEDERATED_METHOD, KEY_METHOD, SECRET_METHOD, ClientConfig
from keycloak_jwt_auth.tokens.flow import REALM_MISSING, SERVER_URL_PATH_HINT, token_flow
from keycloak_jwt_auth.tokens.token import AccessToken

OK, WARN, FAIL = "OK", "WARN", "FAIL"
SKEW_WARN = 5.0  # seconds of clock skew worth a warning
# Keycloak refuses an assertion whose iat is over 60 s old or over 15 s ahead: FAIL at 3/4 of it.
SKEW_FAIL = {"behind": 45.0, "ahead": 11.0}
CLIENT_SCREEN = "Keycloak: Clients > {client_id}"
# Keycloak's client authenticator for each AUTH_METHOD: (its id, the console's name).
AUTHENTICATORS = {
    SECRET_METHOD: ("client-secret-jwt", "Signed JWT with client secret"),
    KEY_METHOD: ("client-jwt", "Signed JWT"),
    FEDERATED_METHOD: ("federated-jwt", "Signed JWT - Federated"),
}


@dataclasses.dataclass(frozen=True)
class Finding:
    check: str
    status: str
    message: str
    hint: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Probe:
    """What the checks of one client learn, in order."""

    config: ClientConfig
    clock: Callable[[], float]  # the clock assertions are built with (tests shift it)
    session: requests.Session = dataclasses.field(default_factory=requests.Session)
    discovery: dict[str, Any] | None = None
    token: AccessToken | None = None
    claims: dict[str, Any] = dataclasses.field(default_factory=dict)
    skew: float | None = None  # our clock minus Keycloak's, seconds
    skew_source: str = ""
    jwks_url: str | None = None  # the client's JWKS URL as Keycloak keeps it
    failed: bool = False
    dpop: DPoPSigner | None = None  # the DPoP key's signer, when the client has one

    @property
    def client_screen(self) -> str:
        return CLIENT_SCREEN.format(client_id=self.config.client_id)


def fetch(probe: Probe, url: str, what: str) -> requests.Response:
    """GET ``url`` through the app's transport (no redirect followed, size-capped); ``what``
    names the answerer in errors."""
    return exchange(
        probe.session,
        "GET",
        url,
        config=probe.config,
        unavailable=KeycloakUnavailableError,
        refused=lambda reason, status: KeycloakJWTAuthError(f"{what} {reason}"),
        limit=TOKEN_BODY_LIMIT,
    )


# --- the checks ------------------------------------------------------------------------------


def check_server(probe: Probe) -> Finding | None:
    url = f"{probe.config.issuer}/.well-known/openid-configuration"
    try:
        response = fetch(probe, url, "Keycloak")
    except TLSError as exc:
        if exc.plain_http:
            return Finding("server", FAIL, str(exc), "Check SERVER_URL's scheme and port.")
        return Finding("server", FAIL, str(exc), "VERIFY: True, or the CA bundle's path.")
    except KeycloakJWTAuthError as exc:
        hint = "Check SERVER_URL, and that Keycloak runs and is reachable from this host."
        return Finding("server", FAIL, f"{probe.config.server_url}: {exc}", hint)
    body = json_body(response)
    if response.status_code == 404 and not _realm_missing(body):
        message = f"nothing answers at {url} (HTTP 404): no Keycloak at this path"
        return Finding("server", FAIL, message, SERVER_URL_PATH_HINT)
    if response.status_code == 404:
        return Finding(
            "realm",
            FAIL,
            f"Keycloak answered 404 for realm {probe.config.realm!r}"
            + (f" ({body['error']})" if isinstance(body, dict) and "error" in body else ""),
            "Check REALM: the realm's name as Keycloak's realm selector shows it.",
        )
    if response.status_code != 200 or not isinstance(body, dict):
        message = f"the discovery document answered HTTP {response.status_code}, not JSON"
        return Finding("realm", FAIL, message, "Check SERVER_URL (a proxy in front?).")
    probe.discovery = body
    tls = "TLS verified, " if probe.config.server_url.startswith("https") else ""
    return Finding("server", OK, f"{probe.config.server_url} answers ({tls}HTTP 200)")


def _realm_missing(body: Any) -> bool:
    return isinstance(body, dict) and body.get("error") == REALM_MISSING


DISCOVERY_HINTS = {  # what the discovery document announces, and the fix when it differs
    "issuer": "Set SERVER_URL to the URL Keycloak announces (its hostname setting), or AUDIENCE "
    "to the issuer: the assertion's aud must be one Keycloak accepts.",
    "token_endpoint": "Remove TOKEN_ENDPOINT, or set it to the URL Keycloak announces.",
}


def check_realm(probe: Probe) -> Finding | None:
    if probe.discovery is None:
        return None
    ours = {"issuer": probe.config.issuer, "token_endpoint": probe.config.token_endpoint}
    for key, hint in DISCOVERY_HINTS.items():
        announced = probe.discovery.get(key)
        if announced != ours[key]:
            message = f"Keycloak announces the {key} {announced!r}, not {ours[key]!r}"
            return Finding("realm", WARN, message, hint)
    return Finding("realm", OK, f"realm {probe.config.realm!r} exists (issuer {ours['issuer']})")


def check_token(probe: Probe) -> Finding | None:
    """A forced token request, with the credentials the app would try, in its order."""
    if probe.failed:
        return None
    answered: list[tuple[float, str | None]] = []
    probe.session.hooks["response"].append(
        lambda response, **kwargs: answered.append((time.time(), response.headers.get("Date")))
    )
    started = time.time()
    authentication = client_authentication(probe.config)
    first = authentication.candidates()[0]
    probe.dpop = dpop_signer(probe.config.dpop_key, probe.config.dpop_algorithm)
    flow = token_flow(probe.config, authentication, retries=0, now=probe.clock(), dpop=probe.dpop)
    try:
        token, signer = run_flow(flow, probe.session, probe.config)
    except OAuthError as exc:
        return Finding("token", FAIL, f"Keycloak refused: {exc}", token_hint(probe, exc))
    except KeycloakJWTAuthError as exc:
        return Finding("token", FAIL, str(exc), "Check SERVER_URL, TOKEN_ENDPOINT and VERIFY.")
    finally:
        probe.session.hooks["response"].clear()
    probe.token = token
    try:
        probe.claims = token.unverified_claims()
    except jwt.DecodeError:
        probe.claims = {}
    _measure_skew(probe, started, answered)
    message = f"token issued (expires in {token.lifetime:.0f} s)"
    if signer is not first:
        return Finding(
            "token",
            WARN,
            f"{message}, but only with {signer.name}: Keycloak refused {first.name}",
            "A rotation is half done: see the README, 'Rotating the client secret' or "
            "'Rotating the key'.",
        )
    return Finding("token", OK, message)


def _measure_skew(probe: Probe, started: float, answered: list[tuple[float, str | None]]) -> None:
    """Our clock minus Keycloak's: from the token's ``iat`` (seconds, at the middle of the
    exchange), else from the answer's ``Date`` header (Keycloak sends none; proxies do)."""
    if not answered:
        return
    received, date = answered[-1]
    ours = probe.clock() - (time.time() - (started + received) / 2)
    issued_at = probe.claims.get("iat")
    if isinstance(issued_at, (int, float)):
        probe.skew, probe.skew_source = ours - (issued_at + 0.5), "the token's iat"
    elif date and (parsed := email.utils.parsedate_to_datetime(date)):
        probe.skew, probe.skew_source = ours - parsed.timestamp(), "the Date header"


CLOCK_FIX = "This host's clock and Keycloak's differ: run NTP on both."
JWKS_FIX = (
    "{screen} > Keys: 'Use JWKS URL' on, and the JWKS URL serving this app's jwks view "
    "('manage.py keycloak_keys jwks' prints what it serves). Keycloak re-reads it for an "
    "unknown kid at most every 10 s."
)
TOKEN_HINTS = [  # (words in Keycloak's error_description, the AUTH_METHOD or None, the fix)
    (
        "Signature on JWT token",
        SECRET_METHOD,
        "CLIENT_SECRET is not the client's secret ({screen} > Credentials).",
    ),
    (
        "Signature on JWT token",
        KEY_METHOD,
        "The JWKS Keycloak read holds another key under this kid. " + JWKS_FIX,
    ),
    ("Unable to load public key", KEY_METHOD, "Keycloak does not know this key. " + JWKS_FIX),
    (
        "Invalid signature algorithm",
        None,
        "ALGORITHM must be the client's 'Signature algorithm' ({screen} > Credentials).",
    ),
    (
        "Invalid client or Invalid client credentials",
        FEDERATED_METHOD,
        "Keycloak has no client trusting this JWT: {screen} > Credentials must name the "
        "identity provider whose issuer is the JWT's iss, and the JWT's sub as the subject "
        "(the 'assertion' line shows both); the provider must reach the issuer's keys.",
    ),
    (
        "Invalid client or Invalid client credentials",
        None,
        "No client {client_id} here that authenticates with '{authenticator}': check "
        "CLIENT_ID and REALM, and {screen} > Credentials > Client Authenticator.",
    ),
    ("service account", None, "Turn on 'Service accounts roles' ({screen} > Settings)."),
    (
        "DPoP proof is missing",
        None,
        "The client requires DPoP bound tokens: set DPOP_KEY_FILE to a key of its own "
        "('manage.py keycloak_keys generate --dpop > dpop.pem').",
    ),
    (
        "issued too far in the past",
        FEDERATED_METHOD,
        "Keycloak accepts a kubernetes provider's JWT up to 3600 s after its iat (an oidc "
        "provider's: 300 s): keep the projected volume's expirationSeconds at 3600 (the kubelet "
        "replaces the token at 80% of it), or make ASSERTION_PROVIDER return fresh JWTs.",
    ),
    ("issued", None, CLOCK_FIX),
    ("not active", None, CLOCK_FIX),
    (
        "audience",
        None,
        "AUDIENCE must be the realm's issuer URL (remove AUDIENCE: that is the default).",
    ),
]


def token_hint(probe: Probe, exc: OAuthError) -> str:
    hint = refusal_hint(probe.config, exc)
    return hint or f"See Keycloak's log for the client {probe.config.client_id}."


def refusal_hint(config: ClientConfig, exc: OAuthError) -> str | None:
    """The fix for a refusal whose ``error_description`` is one Keycloak gives, else None
    (``fetch_token`` prints it too)."""
    description = (exc.error_description or "").lower()
    method = config.auth_method
    for words, for_method, hint in TOKEN_HINTS:
        if words.lower() in description and for_method in (None, method):
            return hint.format(
                screen=CLIENT_SCREEN.format(client_id=config.client_id),
                client_id=config.client_id,
                authenticator=AUTHENTICATORS[method][1],
            )
    return None


def check_clock(probe: Probe) -> Finding | None:
    if probe.skew is None:
        return None
    skew = probe.skew
    direction = "ahead of" if skew > 0 else "behind"
    message = f"this host's clock is {abs(skew):.1f} s {direction} Keycloak's ({probe.skew_source})"
    limit = SKEW_FAIL["ahead" if skew > 0 else "behind"]
    hint = (
        "Run NTP (chrony, systemd-timesyncd) on this host and Keycloak's: Keycloak refuses "
        "assertions issued over 60 s ago or over 15 s ahead of its clock."
    )
    if abs(skew) >= limit:
        return Finding("clock", FAIL, message, hint)
    if abs(skew) > SKEW_WARN:
        return Finding("clock", WARN, message, hint)
    return Finding("clock", OK, message)
