"""The live preflight behind ``manage.py keycloak_doctor``: one client checked against Keycloak.

Each check is a small function that reads (and may add to) a ``Probe`` and returns its
``Finding`` (OK / WARN / FAIL, with a hint naming the fix), or None when it does not apply or
an earlier check already failed. To add a check, write one and append it to ``CHECKS``.
No finding carries the secret, an assertion or a token.
"""

from __future__ import annotations

import dataclasses
import email.utils
import time
from collections.abc import Callable
from typing import Any

import jwt
import requests
from django.conf import settings
from django.core.cache import caches

from keycloak_jwt_auth.admin import calls as admin_calls
from keycloak_jwt_auth.client_auth.assertion import PrivateKeyJwt, client_authentication
from keycloak_jwt_auth.exceptions import (
    ConfigurationError,
    KeycloakJWTAuthError,
    KeycloakUnavailableError,
    OAuthError,
    TLSError,
)
from keycloak_jwt_auth.http.transport import TOKEN_BODY_LIMIT, exchange, json_body
from keycloak_jwt_auth.settings import (
    KEY_METHOD,
    SECRET_METHOD,
    ClientConfig,
    get_client_config,
)
from keycloak_jwt_auth.settings.checks import UNFIT_CACHES
from keycloak_jwt_auth.tokens.manager import refresh_at
from keycloak_jwt_auth.tokens.token import AccessToken
from keycloak_jwt_auth.tokens.token_endpoint import first_accepted

OK, WARN, FAIL = "OK", "WARN", "FAIL"
SKEW_WARN = 5.0  # seconds of clock skew worth a warning
# Keycloak refuses an assertion whose iat is over 60 s old or over 15 s ahead: FAIL at 3/4 of it.
SKEW_FAIL = {"behind": 45.0, "ahead": 11.0}
# realm-management roles of the Admin API reads (admin.calls.ROLES_BY_RESOURCE, events aside).
ADMIN_ROLES = ("view-users", "query-groups", "view-realm", "view-clients")
CLIENT_SCREEN = "Keycloak: Clients > {client_id}"
# Keycloak's client authenticator for each AUTH_METHOD: (its id, the console's name).
AUTHENTICATORS = {
    SECRET_METHOD: ("client-secret-jwt", "Signed JWT with client secret"),
    KEY_METHOD: ("client-jwt", "Signed JWT"),
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

    @property
    def client_screen(self) -> str:
        return CLIENT_SCREEN.format(client_id=self.config.client_id)


Check = Callable[[Probe], "Finding | None"]


def diagnose(client: str, *, clock: Callable[[], float] = time.time) -> list[Finding]:
    """Every finding for ``client``, in the order of ``CHECKS``."""
    try:
        config = get_client_config(client)
    except ConfigurationError as exc:
        return [Finding("settings", FAIL, str(exc), "Run 'manage.py check' for each problem.")]
    probe = Probe(config, clock)
    findings = []
    for check in CHECKS:
        finding = check(probe)
        if finding is not None:
            findings.append(finding)
            probe.failed = probe.failed or finding.status == FAIL
    probe.session.close()
    return findings


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
        return Finding("server", FAIL, str(exc), "VERIFY: True, or the CA bundle's path.")
    except KeycloakJWTAuthError as exc:
        hint = "Check SERVER_URL, and that Keycloak runs and is reachable from this host."
        return Finding("server", FAIL, f"{probe.config.server_url}: {exc}", hint)
    body = json_body(response)
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
    signers = client_authentication(probe.config).candidates()
    try:
        token, signer = first_accepted(
            probe.config, signers, session=probe.session, now=probe.clock()
        )
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
    if signer is not signers[0]:
        return Finding(
            "token",
            WARN,
            f"{message}, but only with {signer.name}: Keycloak refused {signers[0].name}",
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
        None,
        "No client {client_id} here that authenticates with '{authenticator}': check "
        "CLIENT_ID and REALM, and {screen} > Credentials > Client Authenticator.",
    ),
    ("service account", None, "Turn on 'Service accounts roles' ({screen} > Settings)."),
    ("issued", None, CLOCK_FIX),
    ("not active", None, CLOCK_FIX),
    (
        "audience",
        None,
        "AUDIENCE must be the realm's issuer URL (remove AUDIENCE: that is the default).",
    ),
]


def token_hint(probe: Probe, exc: OAuthError) -> str:
    description = (exc.error_description or "").lower()
    method = probe.config.auth_method
    for words, for_method, hint in TOKEN_HINTS:
        if words.lower() in description and for_method in (None, method):
            return hint.format(
                screen=probe.client_screen,
                client_id=probe.config.client_id,
                authenticator=AUTHENTICATORS[method][1],
            )
    return f"See Keycloak's log for the client {probe.config.client_id}."


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


def check_refresh_margin(probe: Probe) -> Finding | None:
    if probe.token is None:
        return None
    lifetime, margin = probe.token.lifetime, probe.config.refresh_margin
    if margin > lifetime / 3:
        return Finding(
            "refresh margin",
            WARN,
            f"REFRESH_MARGIN is {margin:g} s but tokens live {lifetime:.0f} s: renewal starts "
            f"a third of the lifetime early ({lifetime / 3:.0f} s) instead",
            f"Lower REFRESH_MARGIN to {lifetime / 3:.0f} s or less, or lengthen the tokens "
            f"({probe.client_screen} > Advanced > Access Token Lifespan).",
        )
    return Finding(
        "refresh margin",
        OK,
        f"tokens live {lifetime:.0f} s; renewal starts {margin:g} s before expiry",
    )


def check_lock_timeout(probe: Probe) -> Finding | None:
    if probe.token is None:
        return None
    window = probe.token.expires_at - refresh_at(probe.token, probe.config.refresh_margin)
    lock = probe.config.lock_timeout
    if lock >= window:
        return Finding(
            "lock timeout",
            WARN,
            f"LOCK_TIMEOUT is {lock:g} s, as long as the renewal window ({window:.0f} s): after "
            "a failed renewal the token may expire before the next try, and callers wait",
            "Lengthen the tokens (Access Token Lifespan), raise REFRESH_MARGIN, or lower "
            "TIMEOUT (LOCK_TIMEOUT follows it).",
        )
    return Finding("lock timeout", OK, f"LOCK_TIMEOUT {lock:g} s fits the {window:.0f} s window")


def check_roles(probe: Probe) -> Finding | None:
    if probe.token is None:
        return None
    access = probe.claims.get("resource_access") or {}
    roles = set((access.get("realm-management") or {}).get("roles") or [])
    missing = [role for role in ADMIN_ROLES if role not in roles]
    if missing:
        return Finding(
            "roles",
            WARN,
            f"the token lacks the realm-management roles {', '.join(missing)}: those "
            "KeycloakAdmin calls will answer 403",
            f"{probe.client_screen} > Service accounts roles > Assign role > realm-management "
            "(only if this client calls the Admin API).",
        )
    return Finding("roles", OK, f"the token carries {', '.join(ADMIN_ROLES)}")


def check_client_configuration(probe: Probe) -> Finding | None:
    """The client as Keycloak keeps it, when the service account may read it (view-clients)."""
    representation = _client_representation(probe)
    if representation is None:
        return None
    attributes = representation.get("attributes") or {}
    authenticator = representation.get("clientAuthenticatorType")
    algorithm = attributes.get("token.endpoint.auth.signing.alg") or None
    max_age = attributes.get("token.endpoint.auth.signing.max.exp")
    screen = f"{probe.client_screen} > Credentials"
    method = probe.config.auth_method
    expected, label = AUTHENTICATORS[method]
    if authenticator != expected:
        hint = f"{screen}: Client Authenticator '{label}' (AUTH_METHOD is {method})."
        return Finding("client", FAIL, f"the client authenticator is {authenticator!r}", hint)
    if probe.config.auth_method == KEY_METHOD:
        if attributes.get("use.jwks.url") != "true" or not attributes.get("jwks.url"):
            message = "the client does not read its public keys from a JWKS URL"
            return Finding("client", FAIL, message, JWKS_FIX.format(screen=probe.client_screen))
        probe.jwks_url = attributes["jwks.url"]
    if algorithm is None:
        kind = "asymmetric" if probe.config.auth_method == KEY_METHOD else "HMAC"
        hint = f"{screen}: set 'Signature algorithm' to {probe.config.algorithm}."
        return Finding("client", WARN, f"the client accepts any {kind} signature algorithm", hint)
    if max_age and probe.config.assertion_lifetime > int(max_age):
        return Finding(
            "client",
            FAIL,
            f"the client accepts assertions of at most {max_age} s; ASSERTION_LIFETIME is "
            f"{probe.config.assertion_lifetime} s",
            f"Lower ASSERTION_LIFETIME to {max_age}, or raise the limit in {screen}.",
        )
    return Finding("client", OK, f"{label}, signature algorithm {algorithm}")


def check_jwks(probe: Probe) -> Finding | None:
    """private_key_jwt: the JWKS URL Keycloak was given serves the current key (read from this
    host; Keycloak reads it from its own)."""
    if probe.config.auth_method != KEY_METHOD or probe.token is None:
        return None
    if probe.jwks_url is None:
        message = "the client's JWKS URL is unknown: the service account may not read the client"
        hint = "Give it realm-management's view-clients to check, or compare by hand: " + (
            JWKS_FIX.format(screen=probe.client_screen)
        )
        return Finding("jwks", WARN, message, hint)
    method = client_authentication(probe.config)
    assert isinstance(method, PrivateKeyJwt)
    current, url = method.current.jwk, probe.jwks_url
    try:
        response = fetch(probe, url, "The JWKS URL")
        body = json_body(response)
    except KeycloakJWTAuthError as exc:
        return Finding("jwks", FAIL, f"{url}: {exc}", JWKS_FIX.format(screen=probe.client_screen))
    keys = body.get("keys") if isinstance(body, dict) else None
    same_kid = [k for k in keys or [] if isinstance(k, dict) and k.get("kid") == current["kid"]]
    if response.status_code != 200 or not isinstance(keys, list):
        problem = f"answered HTTP {response.status_code} without a JSON key set"
    elif not same_kid:
        problem = f"does not hold the current key (kid {current['kid']})"
    elif any(k.get(m) != current[m] for k in same_kid for m in current if m not in ("alg", "use")):
        problem = f"holds another key under the current key's kid {current['kid']}"
    else:
        return Finding("jwks", OK, f"{url} serves the current key (kid {current['kid']})")
    return Finding("jwks", FAIL, f"{url} {problem}", JWKS_FIX.format(screen=probe.client_screen))


def _client_representation(probe: Probe) -> dict[str, Any] | None:
    if probe.token is None:
        return None
    call = admin_calls.clients(client_id=probe.config.client_id)
    options = admin_calls.request_options(call, probe.config)
    options["headers"] = {**options["headers"], "Authorization": probe.token.authorization}
    url = f"{probe.config.admin_url}{call.path}"
    try:
        response = exchange(probe.session, "GET", url, **options)
        body = json_body(response)
        found = admin_calls.result(call, response.status_code, body, "", realm=probe.config.realm)
    except KeycloakJWTAuthError:  # 403 without view-clients, or unreachable: nothing to say
        return None
    return dict(found[0]) if found else None


def check_cache(probe: Probe) -> Finding | None:
    alias = probe.config.cache_alias
    key = f"keycloak_jwt_auth:doctor:{time.time_ns()}"
    try:
        cache = caches[alias]
        cache.set(key, "1", 10)
        answered = cache.get(key) == "1"
        cache.delete(key)
    except Exception as exc:  # any backend error: Redis down, bad LOCATION...
        message = f"cache {alias!r} failed: {type(exc).__name__}: {exc}"
        hint = "Check CACHES (the server's address, that it runs); meanwhile each process "
        return Finding("cache", FAIL, message, hint + "keeps its own token.")
    if not answered:
        hint = "Point CACHE_ALIAS at a real shared cache such as Redis."
        return Finding("cache", WARN, f"cache {alias!r} does not keep what it is given", hint)
    for unfit, _, what, hint in UNFIT_CACHES:
        if unfit(settings.CACHES[alias]):
            return Finding("cache", WARN, f"cache {alias!r} answers, but it is {what}", hint)
    return Finding("cache", OK, f"cache {alias!r} answers and is shared between processes")


CHECKS: list[Check] = [
    check_server,
    check_realm,
    check_token,
    check_clock,
    check_refresh_margin,
    check_lock_timeout,
    check_roles,
    check_client_configuration,
    check_jwks,
    check_cache,
]
