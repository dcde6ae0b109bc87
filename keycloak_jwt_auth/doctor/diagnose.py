"""The live preflight behind ``manage.py keycloak_doctor``: one client checked against Keycloak.

Each check is a small function that reads (and may add to) a ``Probe`` and returns its
``Finding`` (OK / WARN / FAIL, with a hint naming the fix), or None when it does not apply or
an earlier check already failed. To add a check, write one and append it to ``CHECKS``.
The checks that reach Keycloak and get a token are in ``probe.py``; those here judge what
they learnt against the settings and the client's configuration in Keycloak.
No finding carries the secret, an assertion or a token.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.cache import caches
from django.http.request import split_domain_port, validate_host

from keycloak_jwt_auth.admin import calls as admin_calls
from keycloak_jwt_auth.admin.support_calls import CALLS_BY_EXTRA_ROLE
from keycloak_jwt_auth.auths.authorize import headers_for
from keycloak_jwt_auth.client_auth import PrivateKeyJwt, client_authentication
from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.doctor.federated import check_assertion, federated_client_finding
from keycloak_jwt_auth.doctor.probe import (
    AUTHENTICATORS,
    FAIL,
    JWKS_FIX,
    OK,
    WARN,
    Finding,
    Probe,
    check_clock,
    check_realm,
    check_server,
    check_token,
    fetch,
)
from keycloak_jwt_auth.exceptions import ConfigurationError, KeycloakJWTAuthError, server_text
from keycloak_jwt_auth.http.transport import exchange, json_body
from keycloak_jwt_auth.settings import FEDERATED_METHOD, KEY_METHOD, SETTING_NAME, client_names
from keycloak_jwt_auth.settings.checks import UNFIT_CACHES

__all__ = ["CHECKS", "FAIL", "OK", "WARN", "Finding", "diagnose"]

# Keycloak accepts a proof issued up to 25 s ago (10 s life, 15 s skew) or 15 s ahead.
PROOF_WINDOW = {"behind": 25.0, "ahead": 15.0}
# realm-management roles of the Admin API reads (admin.calls.ROLES_BY_RESOURCE, events aside).
ADMIN_ROLES = ("view-users", "query-groups", "view-realm", "view-clients")

Check = Callable[[Probe], "Finding | None"]


def diagnose(client: str, *, clock: Callable[[], float] = time.time) -> list[Finding]:
    """Every finding for ``client``, in the order of ``CHECKS``."""
    if client not in client_names():
        message = f"no client {client!r} in {SETTING_NAME}"
        return [Finding("settings", FAIL, message, f"Use --client with one of: {known_clients()}.")]
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


def known_clients() -> str:
    return ", ".join(client_names())


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
    window = probe.token.expires_at - probe.token.renew_from(probe.config.refresh_margin)
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
    return Finding("roles", OK, f"the token carries {', '.join(ADMIN_ROLES)}{_lacking(roles)}")


def _lacking(roles: set[str]) -> str:
    """What the token cannot do beyond the reads: said, not warned (few apps write)."""
    lacking = [(role, calls) for role, calls in CALLS_BY_EXTRA_ROLE.items() if role not in roles]
    said = "; ".join(f"without {role}: {calls}" for role, calls in lacking)
    return f" (these calls would answer 403: {said})" if said else ""


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
    if method == FEDERATED_METHOD:
        return federated_client_finding(probe, attributes, label)
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
    if not served_here(probe.jwks_url):
        message = (
            f"the client's JWKS URL {server_text(probe.jwks_url)!r} is not fetched: its host is "
            "not one of this app's ALLOWED_HOSTS (the doctor requests no other URL read from "
            "Keycloak)"
        )
        hint = "Point it at this app's jwks view, or compare by hand: " + (
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


def served_here(url: str) -> bool:
    """Whether ``url`` (read from Keycloak: anyone who may edit the client chose it) is served
    by this app: an http(s) URL on one of its ``ALLOWED_HOSTS`` (never by the wildcard '*').
    Only such a URL is fetched, so a Keycloak admin cannot make the app request another one."""
    try:
        parts = urlsplit(url)
        domain, _ = split_domain_port(parts.netloc.rpartition("@")[2])
    except (TypeError, ValueError, AttributeError):
        return False
    hosts = [host for host in settings.ALLOWED_HOSTS if host != "*"]
    named = parts.scheme in ("http", "https") and not parts.username and bool(domain)
    return named and validate_host(domain, hosts)


def _client_representation(probe: Probe) -> dict[str, Any] | None:
    if probe.token is None:
        return None
    call = admin_calls.clients(client_id=probe.config.client_id)
    options = admin_calls.request_options(call, probe.config)
    url = f"{probe.config.admin_url}{call.path}"
    authorization = headers_for(probe.token, "GET", url, probe.dpop)
    options["headers"] = {**options["headers"], **authorization}
    try:
        response = exchange(probe.session, "GET", url, **options)
        body = json_body(response)
        found = admin_calls.result(call, response.status_code, body, "", realm=probe.config.realm)
    except KeycloakJWTAuthError:  # 403 without view-clients, or unreachable: nothing to say
        return None
    return dict(found[0]) if found else None


def check_dpop(probe: Probe) -> Finding | None:
    """A DPoP client: its token bound to the configured key, the client requiring DPoP in
    Keycloak (when readable), and this host's clock against the proofs' window."""
    if probe.token is None or probe.dpop is None:
        return None  # (a client that requires DPoP without a key: the token finding says so)
    cnf = probe.claims.get("cnf")
    bound = cnf.get("jkt") if isinstance(cnf, dict) else None
    if bound is None:
        message = "a DPoP token (not a JWT: the APIs check its binding)"
    else:
        message = f"token bound to the DPoP key (cnf.jkt {bound})"
    ahead, behind = PROOF_WINDOW["ahead"] * 0.75, PROOF_WINDOW["behind"] * 0.75
    if probe.skew is not None and not -behind < probe.skew < ahead:
        return Finding(
            "dpop",
            FAIL,
            f"{message}, but this host's clock is {probe.skew:+.1f} s off Keycloak's: proofs "
            f"are refused outside {PROOF_WINDOW['behind']:.0f} s back, "
            f"{PROOF_WINDOW['ahead']:.0f} s ahead",
            "Run NTP (chrony, systemd-timesyncd) on this host and Keycloak's.",
        )
    representation = _client_representation(probe)
    if representation is None:
        return Finding("dpop", OK, f"{message}; whether the client requires DPoP is unknown")
    attributes = representation.get("attributes") or {}
    if attributes.get("dpop.bound.access.tokens") != "true":
        return Finding(
            "dpop",
            WARN,
            f"{message}, but the client does not require DPoP: a token request without a proof "
            "would get a Bearer token",
            f"{probe.client_screen}: turn on 'Require DPoP bound tokens'.",
        )
    return Finding("dpop", OK, f"{message}; the client requires DPoP bound tokens")


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
    check_assertion,
    check_token,
    check_clock,
    check_refresh_margin,
    check_lock_timeout,
    check_roles,
    check_client_configuration,
    check_jwks,
    check_dpop,
    check_cache,
]
