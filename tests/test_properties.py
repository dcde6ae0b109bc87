"""Property-based tests: whatever Keycloak answers and whatever the shared cache holds, the
parser and the reader either produce a usable Bearer token or refuse it with the app's error,
never anything else (no OverflowError, RecursionError, TypeError...)."""

from __future__ import annotations

import json
import math
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keycloak_jwt_auth.exceptions import (
    InvalidTokenResponseError,
    OAuthError,
    TokenEndpointUnavailableError,
)
from keycloak_jwt_auth.http.steps import Reply
from keycloak_jwt_auth.tokens.flow import parse_token_response
from keycloak_jwt_auth.tokens.token import MAX_LIFETIME, TOKEN_CHARACTERS, AccessToken

NUMBERS = st.one_of(
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(min_value=-1e12, max_value=1e12),  # times far from now, still finite
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
)
SCALARS = st.one_of(st.none(), st.text(max_size=40), NUMBERS)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
TOKEN_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "access_token": st.one_of(
            st.text(max_size=60), st.from_regex(r"[A-Za-z0-9.-]{1,40}"), JSON
        ),
        "expires_in": st.one_of(NUMBERS, JSON),
        "token_type": st.one_of(st.sampled_from(["Bearer", "bearer", "DPoP", "Bearer\r\n"]), JSON),
        "scope": st.one_of(st.text(max_size=20), JSON),
        "error": st.one_of(st.sampled_from(["invalid_client", "unauthorized_client"]), JSON),
    },
)


def assert_usable(token: AccessToken, issued_at: float) -> None:
    assert TOKEN_CHARACTERS.fullmatch(token.value)
    assert token.token_type == "Bearer"
    assert token.issued_at == issued_at
    assert 0 < token.lifetime <= MAX_LIFETIME and math.isfinite(token.expires_at)
    token.expires_at_datetime  # noqa: B018 (what the views and fetch_token format)
    assert repr(token.value) == "'********'"


def answer(status: int, body: bytes) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, body, "https://keycloak.test/token")


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(fields=TOKEN_FIELDS, status=st.sampled_from([200, 400, 401, 500, 502]))
def test_the_token_response_parser(fields: dict[str, Any], status: int) -> None:
    started = time.time()
    body = json.dumps(fields, allow_nan=True).encode()
    try:
        token = parse_token_response(answer(status, body), started=started)
    except (InvalidTokenResponseError, OAuthError, TokenEndpointUnavailableError):
        return
    assert status == 200 and "error" not in fields
    assert_usable(token, started)


@settings(max_examples=200)
@given(body=st.binary(max_size=200))
def test_the_token_response_parser_on_any_bytes(body: bytes) -> None:
    try:
        parse_token_response(answer(200, body), started=time.time())
    except InvalidTokenResponseError:
        return


STORED = st.fixed_dictionaries(
    {},
    optional={
        "value": st.one_of(st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True), JSON),
        "expires_at": st.one_of(NUMBERS, JSON),
        "issued_at": st.one_of(NUMBERS, JSON),
        "token_type": st.one_of(st.just("Bearer"), JSON),
        "scope": st.one_of(st.none(), st.text(max_size=10), JSON),
    },
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(stored=st.one_of(STORED, JSON))
def test_the_cached_value_reader(stored: Any) -> None:
    try:
        token = AccessToken.from_json(json.dumps(stored, allow_nan=True))
    except ValueError:
        return
    assert_usable(token, token.issued_at)


@settings(max_examples=200)
@given(raw=st.one_of(st.binary(max_size=100), st.text(max_size=100), JSON))
def test_the_cached_value_reader_on_anything(raw: Any) -> None:
    try:
        AccessToken.from_json(raw)
    except ValueError:
        return
