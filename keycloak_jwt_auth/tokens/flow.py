"""The token request as a sans-IO flow: every decision between "a token is needed" and "here it
is", with no socket, no sleep and no cache inside.

The flow is a generator. It yields what it needs done — a ``Send`` (one HTTP request) or a
``Pause`` (a wait before the next try) — and receives a ``Reply`` for each ``Send``; a request
that got no usable answer (network failure, timeout, redirect, oversized body) is thrown into
it as the ``Send``'s own error. A driver pumps it: ``http.transport.run_flow`` (requests) or
``http.async_transport.arun_flow`` (httpx); tests pump it by hand. What a driver does around a
``Pause`` (sleep, keep a cross-process lock alive) is the driver's caller's business.

Only the assertion travels; the form never carries ``client_secret``. A DPoP client's ``Send``s
carry a proof header each (and one retry on ``use_dpop_nonce``). A token exchange
(``tokens/exchange.py``) is this same flow with the exchange's form fields.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections.abc import Callable, Generator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote

from keycloak_jwt_auth.client_auth import (
    ASSERTION_TYPE,
    ClientAuthentication,
    Signer,
    build_client_assertion,
)
from keycloak_jwt_auth.client_auth.dpop import NONCE_ERROR, DPoPSigner
from keycloak_jwt_auth.exceptions import (
    InvalidTokenResponseError,
    KeycloakJWTAuthError,
    KeycloakUnavailableError,
    OAuthError,
    TokenEndpointNotFoundError,
    TokenEndpointUnavailableError,
    server_text,
)
from keycloak_jwt_auth.http.steps import Pause, Reply, Send
from keycloak_jwt_auth.http.transport import TOKEN_BODY_LIMIT
from keycloak_jwt_auth.settings import ClientConfig, one_request_seconds
from keycloak_jwt_auth.tokens.token import AccessToken

logger = logging.getLogger(__name__)

BACKOFF_BASE = 0.25  # seconds; retry n waits a random time up to BACKOFF_BASE * 2**n
BACKOFF_CAP = 4.0
# The OAuth errors Keycloak refuses a client's signature with. (It uses them for other refusals
# too; trying the other FALLBACK_SECRETS then costs one request each, and the first answer is
# the one raised.)
SIGNATURE_REFUSED = frozenset({"unauthorized_client", "invalid_client"})
# "identity": a token response is small, and a compressed one is one more thing to get wrong.
TOKEN_HEADERS = {"Accept": "application/json", "Accept-Encoding": "identity"}


class Fetched(NamedTuple):
    token: AccessToken
    signer: Signer  # the credential Keycloak accepted


Step = Send | Pause
TokenFlow = Generator[Step, Reply | None, Fetched]


def token_flow(
    config: ClientConfig,
    authentication: ClientAuthentication,
    *,
    hint: object = None,
    retries: int | None = None,
    now: float | None = None,
    dpop: DPoPSigner | None = None,
    grant: Mapping[str, str] | None = None,
) -> TokenFlow:
    """Fetch a token with ``client_credentials`` (or with the form fields of another ``grant``:
    the token exchange of ``tokens/exchange.py``, under the same rules).

    Each request carries a fresh assertion. A refused signature moves on to the method's next
    credential (``hint`` names the one to try first, see ``ClientSecretJwt``); any other OAuth
    error is final. No answer at all (network, timeout, 5xx) is retried ``retries`` times
    (default ``RETRIES``) after a jittered, exponential pause. ``now`` dates the assertions
    and proofs (tests that need an old ``iat``). With ``dpop``, each request carries a proof
    and the token must come back bound to its key; a ``use_dpop_nonce`` refusal that brings a
    new nonce gets one more request (a new proof with it, and a fresh assertion)."""
    retries = config.retries if retries is None else retries
    send = token_request(config, dpop, now=now, grant=grant)
    bound_to = None if dpop is None else dpop.jkt
    for attempt in range(retries + 1):
        refusal: OAuthError | None = None
        try:
            for signer in authentication.candidates(hint):
                for nonce_retry in (False, True):
                    # The token's life counts from here: network time can only shorten our use.
                    started = time.time()
                    reply = yield send(build_client_assertion(config, signer, now=now))
                    assert reply is not None
                    new_nonce = dpop is not None and dpop.learn_nonce(reply.url, reply.headers)
                    try:
                        token = parse_token_response(reply, started=started, bound_to=bound_to)
                        return Fetched(token, signer)
                    except OAuthError as exc:
                        if exc.error == NONCE_ERROR and new_nonce and not nonce_retry:
                            continue
                        if exc.error not in SIGNATURE_REFUSED:
                            raise
                        refusal = refusal or exc
                        break
        except KeycloakUnavailableError as exc:
            if attempt == retries:
                raise
            delay = backoff(attempt)
            logger.warning(
                "Token request for client %s failed (%s); retry %d of %d in %.2fs",
                config.name,  # the name the manager's failure log uses too
                exc,
                attempt + 1,
                retries,
                delay,
            )
            yield Pause(delay)
            continue
        assert refusal is not None  # every credential was refused
        raise refusal
    raise AssertionError("unreachable")  # pragma: no cover


def token_request(
    config: ClientConfig,
    dpop: DPoPSigner | None = None,
    *,
    now: float | None = None,
    grant: Mapping[str, str] | None = None,
) -> Callable[[str], Send]:
    """The ``Send`` of a token request carrying a given assertion (and a new DPoP proof):
    ``client_credentials`` with the client's ``SCOPE``, or the fields of ``grant``."""
    url = config.token_endpoint
    client_credentials = {"grant_type": "client_credentials"}
    if config.scope:
        client_credentials["scope"] = config.scope

    def unavailable(reason: str) -> KeycloakUnavailableError:
        return TokenEndpointUnavailableError(f"Cannot reach the token endpoint {url}: {reason}")

    def refused(reason: str, status: int) -> KeycloakJWTAuthError:
        return InvalidTokenResponseError(
            f"Token endpoint {url} {reason}", status=status, content_type=""
        )

    def send(assertion: str) -> Send:
        form = {
            **(grant or client_credentials),
            "client_id": config.client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        headers = TOKEN_HEADERS
        if dpop is not None:
            headers = {**TOKEN_HEADERS, "DPoP": dpop.proof("POST", url, now=now)}
        return Send("POST", url, headers, form, TOKEN_BODY_LIMIT, unavailable, refused)

    return send


def longest_fetch(config: ClientConfig) -> float:
    """The longest one flow can take: every try timing out, plus the longest pauses."""
    per_try = one_request_seconds(config.timeout)
    return (config.retries + 1) * per_try + sum(longest_backoff(n) for n in range(config.retries))


def backoff(attempt: int) -> float:
    """A random wait before retry ``attempt + 1``: jittered, exponential, capped."""
    return random.uniform(0, longest_backoff(attempt))


def longest_backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)


def parse_token_response(
    reply: Reply, *, started: float, bound_to: str | None = None
) -> AccessToken:
    """The token in ``reply``, or the error it stands for: an OAuth error (4xx with ``error``),
    an outage (5xx), or an answer that is no token response (or, for a DPoP client whose key
    has thumbprint ``bound_to``, no token bound to it)."""
    status = reply.status
    content_type = reply.headers.get("Content-Type", "")
    body = json_object(reply.body)
    if status == 404:
        raise not_found(reply.url, body, content_type)
    if body is not None and "error" in body and status < 500:
        raise OAuthError.from_response(
            str(body["error"]), _optional_str(body.get("error_description")), status=status
        )
    if status >= 500:
        error = f" ({server_text(body['error'])})" if body and "error" in body else ""
        raise TokenEndpointUnavailableError(
            f"Token endpoint {reply.url} answered HTTP {status}{error}", status=status
        )
    if body is None or status != 200:
        raise InvalidTokenResponseError(
            f"Token endpoint {reply.url} answered HTTP {status} with "
            f"{content_type or 'no content type'} instead of a JSON token response",
            status=status,
            content_type=content_type,
        )
    try:
        return AccessToken.checked(
            # Popped: no plain copy of the token stays in this frame's locals.
            body.pop("access_token", None),
            issued_at=started,
            expires_in=body.get("expires_in"),
            token_type=body.get("token_type", "Bearer"),
            scope=body.get("scope"),
            bound_to=bound_to,
        )
    except ValueError as exc:
        raise InvalidTokenResponseError(
            f"Token endpoint {reply.url} answered a token response with {exc}",
            status=status,
            content_type=content_type,
        ) from None


REALM_MISSING = "Realm does not exist"  # Keycloak's error for a realm it does not have
STANDARD_PATH = re.compile(
    r"^(?P<server>.*)/realms/(?P<realm>[^/]+)/protocol/openid-connect/token$"
)
SERVER_URL_PATH_HINT = (
    "Check the path of SERVER_URL: Keycloak 17 and later serve /realms/... at their root (no "
    "/auth prefix), and behind a proxy SERVER_URL includes the proxy's prefix."
)


def not_found(
    url: str, body: dict[str, Any] | None, content_type: str
) -> TokenEndpointNotFoundError:
    """A 404 told apart: Keycloak without the realm, or no Keycloak at that path (a proxy's
    page, or Keycloak's own 404 for a path it does not serve)."""
    error = str(body.get("error", "")) if body else ""
    standard = STANDARD_PATH.match(url)
    if error == REALM_MISSING and standard:
        server, realm = standard["server"], unquote(standard["realm"])
        return TokenEndpointNotFoundError(
            f"Keycloak at {server} has no realm {realm!r} (HTTP 404 {REALM_MISSING!r}). Check "
            "REALM: the realm's name as Keycloak's realm selector shows it.",
            realm_missing=True,
        )
    said = f" {error!r}" if error and not error.startswith("HTTP 404") else ""
    if body is None:
        said = f" with {content_type or 'no content type'}"
    fix = SERVER_URL_PATH_HINT if standard else "Check TOKEN_ENDPOINT."
    message = f"Nothing answers at the token endpoint {url} (HTTP 404{said}). {fix}"
    return TokenEndpointNotFoundError(message, realm_missing=error == REALM_MISSING)


def json_object(body: bytes) -> dict[str, Any] | None:
    """The body as a JSON object, or None (an HTML page, an empty body, a JSON list...)."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    return data if isinstance(data, dict) else None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
