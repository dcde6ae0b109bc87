from __future__ import annotations

import json
import re
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
import responses
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.client_auth import client_authentication
from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.exceptions import (
    InvalidClientError,
    InvalidTokenResponseError,
    KeycloakUnavailableError,
    OAuthError,
    TokenEndpointError,
    TokenEndpointUnavailableError,
    UnauthorizedClientError,
)
from keycloak_jwt_auth.http.transport import network_cause, run_flow
from keycloak_jwt_auth.tokens.flow import token_flow

from .conftest import TOKEN_URL, token_body

SECRET = settings.TEST_SECRET


def fetch() -> Any:
    config = get_client_config()
    flow = token_flow(config, client_authentication(config))
    return run_flow(flow, requests.Session(), config).token


def form_of(call: Any) -> dict[str, list[str]]:
    return parse_qs(call.request.body)


def test_success_parses_the_token(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("abc", expires_in=120, token_type="bearer"))
    before = time.time()
    token = fetch()
    assert token.value == "abc"
    assert token.token_type == "Bearer"
    assert token.scope == "profile email"
    assert before + 120 <= token.expires_at <= time.time() + 120
    assert len(mocked.calls) == 1


def test_form_is_client_credentials_with_assertion_and_no_secret(token_endpoint: Any) -> None:
    mocked = token_endpoint()
    fetch()
    request = mocked.calls[0].request
    form = form_of(mocked.calls[0])
    assert form == {
        "grant_type": ["client_credentials"],
        "client_id": ["django-service"],
        "client_assertion_type": ["urn:ietf:params:oauth:client-assertion-type:jwt-bearer"],
        "client_assertion": form["client_assertion"],
    }
    assert "client_secret" not in request.body
    assert SECRET not in request.body
    assert SECRET not in str(request.headers)
    assert "Authorization" not in request.headers
    jwt.decode(
        form["client_assertion"][0],
        SECRET.encode(),
        algorithms=["HS256"],
        audience="https://keycloak.test/realms/demo",
    )


def test_scope_is_sent_when_configured(token_endpoint: Any) -> None:
    mocked = token_endpoint()
    with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "SCOPE": "email"}):
        fetch()
    assert form_of(mocked.calls[0])["scope"] == ["email"]


@pytest.mark.parametrize(
    ("status", "error", "description", "exception"),
    [
        (400, "invalid_client", "Invalid client or Invalid client credentials", InvalidClientError),
        (401, "invalid_client", "Invalid client or Invalid client credentials", InvalidClientError),
        (
            400,
            "unauthorized_client",
            "Client not enabled to retrieve service account",
            UnauthorizedClientError,
        ),
        (400, "invalid_scope", "Invalid scopes: nope", OAuthError),
        (400, "something_new", None, OAuthError),
    ],
)
def test_oauth_errors_are_typed(
    token_endpoint: Any,
    status: int,
    error: str,
    description: str | None,
    exception: type[OAuthError],
) -> None:
    body = (
        {"error": error}
        if description is None
        else {"error": error, "error_description": description}
    )
    mocked = token_endpoint(body, status=status)
    with pytest.raises(exception) as info:
        fetch()
    assert type(info.value) is exception or exception is OAuthError
    assert (info.value.error, info.value.error_description, info.value.status) == (
        error,
        description,
        status,
    )
    assert error in str(info.value) and f"HTTP {status}" in str(info.value)
    assert len(mocked.calls) == 1  # 4xx is never retried


def test_clock_skew_symptom_gets_a_hint(token_endpoint: Any) -> None:
    token_endpoint(
        {
            "error": "invalid_client",
            "error_description": "Token was issued too far in the past to be used now",
        },
        status=400,
    )
    with pytest.raises(InvalidClientError) as info:
        fetch()
    assert info.value.hint and "clock" in info.value.hint
    assert str(info.value).endswith("check that this host's clock agrees with Keycloak's (NTP)")


def test_html_error_page_is_a_clear_error(mocked: responses.RequestsMock) -> None:
    mocked.post(
        TOKEN_URL,
        body="<html><body>Forbidden by proxy</body></html>",
        status=403,
        content_type="text/html",
    )
    with pytest.raises(InvalidTokenResponseError) as info:
        fetch()
    assert info.value.status == 403
    assert info.value.content_type == "text/html"
    assert "HTTP 403 with text/html instead of a JSON token response" in str(info.value)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("", ""),
        ("{not json", "application/json"),
        ('["a list"]', "application/json"),
        ('{"token_type": "Bearer"}', "application/json"),
        ('{"access_token": "x", "expires_in": "soon"}', "application/json"),
    ],
)
def test_malformed_success_answers(
    mocked: responses.RequestsMock, body: str, content_type: str
) -> None:
    mocked.post(TOKEN_URL, body=body, status=200, content_type=content_type or None)
    with pytest.raises(InvalidTokenResponseError):
        fetch()
    assert len(mocked.calls) == 1


def test_5xx_is_retried_with_a_new_assertion(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, body="<html>Bad gateway</html>", status=502, content_type="text/html")
    mocked.post(TOKEN_URL, json={"error": "unknown_error"}, status=500)
    mocked.post(TOKEN_URL, json=token_body("third-time"))
    assert fetch().value == "third-time"
    jtis = [
        jwt.decode(form_of(c)["client_assertion"][0], options={"verify_signature": False})["jti"]
        for c in mocked.calls
    ]
    assert len(jtis) == 3 and len(set(jtis)) == 3


def test_5xx_gives_up_after_the_retries(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={"error": "unknown_error"}, status=503)
    with pytest.raises(TokenEndpointUnavailableError) as info:
        fetch()
    assert info.value.status == 503
    assert "HTTP 503 (unknown_error)" in str(info.value)
    assert len(mocked.calls) == 3  # RETRIES = 2
    assert isinstance(info.value, KeycloakUnavailableError)
    assert isinstance(info.value, TokenEndpointError)


def test_timeout_is_unavailable_and_retried(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, body=requests.ReadTimeout("read timed out"))
    mocked.post(TOKEN_URL, json=token_body("after-timeout"))
    assert fetch().value == "after-timeout"
    mocked.replace(responses.POST, TOKEN_URL, body=requests.ConnectTimeout("slow"))
    with pytest.raises(TokenEndpointUnavailableError, match="timed out"):
        fetch()


def test_timeouts_are_always_passed(sent_kwargs: dict[str, Any]) -> None:
    with pytest.raises(TokenEndpointUnavailableError):
        fetch()
    assert sent_kwargs["timeout"] == (5.0, 10.0)
    assert sent_kwargs["verify"] is True


def test_connection_refused_names_the_cause() -> None:
    # A real refused connection: nothing listens on port 9 of loopback.
    custom = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": "http://127.0.0.1:9", "RETRIES": 0}
    with (
        override_settings(KEYCLOAK_JWT_AUTH=custom),
        pytest.raises(TokenEndpointUnavailableError) as info,
    ):
        fetch()
    message = str(info.value)
    assert message.startswith("Cannot reach the token endpoint http://127.0.0.1:9/realms/demo/")
    assert "Connection refused" in message
    assert " object at 0x" not in message


def test_network_cause_without_nested_reason() -> None:
    assert network_cause(requests.ConnectionError("plain words")) == "plain words"


def test_errors_never_contain_the_secret(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={"error": "invalid_client", "error_description": "x"}, status=401)
    with pytest.raises(InvalidClientError) as info:
        fetch()
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("expires_in", float("inf"), "no usable expires_in"),
        ("expires_in", 1e12, "an absurd expires_in"),
        ("expires_in", 1e300, "an absurd expires_in"),
        ("expires_in", 10**400, "no usable expires_in"),
        ("expires_in", 0, "no usable expires_in"),
        ("expires_in", True, "no usable expires_in"),
        ("token_type", "DPoP", "token_type 'DPoP' instead of Bearer"),
        ("token_type", "Bearer\r\nX-Injected: 1", "instead of Bearer"),
        ("access_token", "abc\r\nX-Injected: 1", "not a Bearer token"),
        ("access_token", "", "no access_token"),
        ("access_token", None, "no access_token"),
        ("access_token", "a" * 20_000, "not a Bearer token"),
        ("scope", ["email"], "a scope that is not a string"),
    ],
)
def test_absurd_token_responses_are_refused(
    mocked: responses.RequestsMock, field: str, value: Any, reason: str
) -> None:
    body = json.dumps(token_body(**{field: value}))  # extra keys override the defaults
    mocked.post(TOKEN_URL, body=body, content_type="application/json")
    with pytest.raises(InvalidTokenResponseError, match=re.escape(reason)):
        fetch()
    assert len(mocked.calls) == 1  # refused, not retried


def test_deeply_nested_json_is_not_a_token_response(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, body="[" * 50_000 + "]" * 50_000, content_type="application/json")
    with pytest.raises(InvalidTokenResponseError):
        fetch()
