"""The token request: a fresh assertion posted to Keycloak's token endpoint, errors mapped.

Only the assertion travels; the form never carries ``client_secret``.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

import requests
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.client_auth.assertion import (
    ASSERTION_TYPE,
    SharedChoice,
    Signer,
    build_client_assertion,
    client_authentication,
)
from keycloak_jwt_auth.exceptions import (
    InvalidTokenResponseError,
    KeycloakUnavailableError,
    OAuthError,
    TokenEndpointUnavailableError,
)
from keycloak_jwt_auth.http.transport import TOKEN_BODY_LIMIT, exchange, json_body
from keycloak_jwt_auth.settings import ClientConfig

from .token import AccessToken

logger = logging.getLogger(__name__)

BACKOFF_BASE = 0.25  # seconds; attempt n waits a random time up to BACKOFF_BASE * 2**n
BACKOFF_CAP = 4.0
# The OAuth errors Keycloak refuses a client's signature with. (It uses them for other refusals
# too; trying the other FALLBACK_SECRETS then costs one request each, and the first answer is
# the one raised.)
SIGNATURE_REFUSED = frozenset({"unauthorized_client", "invalid_client"})


def token_request_form(config: ClientConfig, assertion: str) -> dict[str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_id": config.client_id,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    if config.scope:
        form["scope"] = config.scope
    return form


def request_token(
    config: ClientConfig,
    *,
    session: requests.Session,
    before_retry: Callable[[], None] | None = None,
    shared: SharedChoice | None = None,
) -> AccessToken:
    """Fetch a token. Connection failures, timeouts and 5xx are retried, each try with a new
    assertion (``before_retry`` runs before each retry); OAuth errors (4xx) are not. ``shared``
    tells processes which of several secrets Keycloak accepts."""
    for attempt in range(config.retries + 1):
        try:
            return authenticate(config, session=session, shared=shared)
        except KeycloakUnavailableError as exc:
            if attempt == config.retries:
                raise
            delay = backoff(attempt)
            logger.warning(
                "Token request for client %s failed (%s); retry %d of %d in %.2fs",
                config.client_id,
                exc,
                attempt + 1,
                config.retries,
                delay,
            )
            time.sleep(delay)
            if before_retry is not None:
                before_retry()
    raise AssertionError("unreachable")  # pragma: no cover


def authenticate(
    config: ClientConfig, *, session: requests.Session, shared: SharedChoice | None = None
) -> AccessToken:
    """One token request with a fresh assertion; with ``FALLBACK_SECRETS``, one per secret (the
    one accepted last first) until Keycloak accepts one."""
    method = client_authentication(config)
    candidates, choice = method.candidates(), None
    if len(candidates) > 1 and shared is not None:
        choice = shared.shared_secret_choice()
        candidates = method.candidates(choice)
    token, signer = first_accepted(config, candidates, session=session)
    fingerprint = method.accepted(signer)
    if fingerprint is not None and fingerprint != choice and shared is not None:
        shared.share_secret_choice(fingerprint)
    return token


@sensitive_variables("assertion")
def first_accepted(
    config: ClientConfig,
    signers: Sequence[Signer],
    *,
    session: requests.Session,
    now: float | None = None,
) -> tuple[AccessToken, Signer]:
    """The token, and the signer of the first fresh assertion Keycloak accepts; a refused
    signature moves on to the next signer, any other error is raised at once, and when every
    signer is refused, Keycloak's first answer is."""
    refusal: OAuthError | None = None
    for signer in signers:
        assertion = build_client_assertion(config, signer, now=now)
        try:
            return post_assertion(config, assertion, session=session), signer
        except OAuthError as exc:
            if exc.error not in SIGNATURE_REFUSED:
                raise
            refusal = refusal or exc
    assert refusal is not None
    raise refusal


def backoff(attempt: int) -> float:
    """A random wait before retry ``attempt + 1``: jittered, exponential, capped."""
    return random.uniform(0, longest_backoff(attempt))


def longest_backoff(attempt: int) -> float:
    return min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)


@sensitive_variables("assertion")
def post_assertion(
    config: ClientConfig, assertion: str, *, session: requests.Session
) -> AccessToken:
    """One POST of ``assertion``, no retry. Tests use it to replay an assertion on purpose."""
    url = config.token_endpoint
    started = time.time()
    response = exchange(
        session,
        "POST",
        url,
        config=config,
        unavailable=lambda reason: TokenEndpointUnavailableError(
            f"Cannot reach the token endpoint {url}: {reason}"
        ),
        refused=lambda reason, status: InvalidTokenResponseError(
            f"Token endpoint {url} {reason}", status=status, content_type=""
        ),
        limit=TOKEN_BODY_LIMIT,
        data=token_request_form(config, assertion),
        headers={"Accept": "application/json", "Accept-Encoding": "identity"},
    )
    return parse_token_response(response, started=started)


def parse_token_response(response: requests.Response, *, started: float) -> AccessToken:
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    body = json_body(response)
    data = body if isinstance(body, dict) else None
    if data is not None and "error" in data and status < 500:
        raise OAuthError.from_response(
            str(data["error"]), _optional_str(data.get("error_description")), status=status
        )
    if status >= 500:
        error = f" ({data['error']})" if data and "error" in data else ""
        raise TokenEndpointUnavailableError(
            f"Token endpoint {response.url} answered HTTP {status}{error}", status=status
        )
    if data is None or status != 200:
        raise InvalidTokenResponseError(
            f"Token endpoint {response.url} answered HTTP {status} with "
            f"{content_type or 'no content type'} instead of a JSON token response",
            status=status,
            content_type=content_type,
        )
    try:
        return AccessToken.checked(
            # Popped: no plain copy of the token stays in this frame's locals.
            data.pop("access_token", None),
            # Counted from when the request started, so network time can only shorten our use.
            issued_at=started,
            expires_in=data.get("expires_in"),
            token_type=data.get("token_type", "Bearer"),
            scope=data.get("scope"),
        )
    except ValueError as exc:
        raise InvalidTokenResponseError(
            f"Token endpoint {response.url} answered a token response with {exc}",
            status=status,
            content_type=content_type,
        ) from None


def _optional_str(value: Any) -> str | None:
    return None if value is None else str(value)
