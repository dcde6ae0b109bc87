"""No secret, client assertion or access token on Django's error pages, whatever fails.

Each failure path is rendered by Django's own ExceptionReporter (the technical 500 page, and
the text an error e-mail or tracker gets), with DEBUG on (where Django hides no frame local)
and off, and the report is scanned for the secret, every assertion Keycloak was sent (and any
JWT at all) and the token.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest
from django.conf import settings
from django.test import RequestFactory, override_settings
from django.views.debug import ExceptionReporter

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    KeycloakAdmin,
    get_access_token,
)
from keycloak_jwt_auth.clients import clients

from .keyring import key_settings, pem
from .loopback import Answer, Loopback

SECRET = settings.TEST_SECRET
TOKEN = "debug-page-token-value"
PASSWORD = "debug-page-password-value"  # up here: the page shows source lines near each frame
POLICY = b'{"error": "invalidPasswordMinLengthMessage", "error_description": "Invalid password"}'
TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+")  # a JOSE header and the next part ("PrivateKeyJwt" is not)


@pytest.fixture
def keycloak() -> Iterator[Loopback]:
    with Loopback() as server:
        body = {"access_token": TOKEN, "expires_in": 300, "token_type": "Bearer"}
        server.route(TOKEN_PATH, Answer(200, json.dumps(body).encode()))
        yield server


def capture(action: Callable[[], Any]) -> tuple[Any, Any, Any]:
    try:
        action()
    except Exception:
        return sys.exc_info()
    raise AssertionError("the failure path did not fail")


def reports(action: Callable[[], Any]) -> Iterator[str]:
    """The HTML and text reports of ``action``'s failure, with DEBUG on and off."""
    for debug in (True, False):
        with override_settings(DEBUG=debug):
            clients.reset()  # fail from a cold start
            reporter = ExceptionReporter(RequestFactory().get("/"), *capture(action))
            yield reporter.get_traceback_html()
            yield reporter.get_traceback_text()


def assertions_sent(server: Loopback) -> list[str]:
    forms = [parse_qs(r.body.decode()) for r in server.received if r.method == "POST"]
    return [form["client_assertion"][0] for form in forms if "client_assertion" in form]


def assert_clean(report: str, server: Loopback | None = None) -> None:
    assert SECRET not in report
    assert TOKEN not in report
    assert not JWT.search(report)  # no JWT: neither an assertion nor a token
    for assertion in assertions_sent(server) if server else []:
        assert assertion not in report


def with_settings(**changes: Any) -> Any:
    return override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, **changes})


def test_an_unknown_client_name() -> None:
    for report in reports(lambda: get_access_token("nope")):
        assert "Unknown Keycloak client" in report
        assert_clean(report)


def test_a_bad_algorithm_at_run_time() -> None:
    with with_settings(ALGORITHM="RS256"):
        for report in reports(get_access_token):
            assert "ConfigurationError" in report
            assert_clean(report)


def test_the_token_endpoint_unreachable() -> None:
    with with_settings(SERVER_URL="http://127.0.0.1:9"):
        for report in reports(get_access_token):
            assert "Connection refused" in report
            assert_clean(report)


@pytest.mark.parametrize(
    "answer",
    [
        Answer(401, b'{"error": "invalid_client", "error_description": "bad signature"}'),
        Answer(503, b'{"error": "unknown_error"}'),
        Answer(200, json.dumps({"access_token": TOKEN, "expires_in": 1e12}).encode()),
        Answer(307, b"", {"Location": "http://127.0.0.1:9/elsewhere"}),
    ],
    ids=["refused", "server error", "absurd token", "redirect"],
)
def test_the_token_endpoint_answering_badly(keycloak: Loopback, answer: Answer) -> None:
    keycloak.route(TOKEN_PATH, answer)
    with with_settings(SERVER_URL=keycloak.url):
        for report in reports(get_access_token):
            assert "keycloak_jwt_auth" in report
            assert_clean(report, keycloak)
    assert assertions_sent(keycloak)  # assertions were sent, and none of them is shown


def test_the_admin_api_unreachable(keycloak: Loopback) -> None:
    token_endpoint = f"{keycloak.url}{TOKEN_PATH}"
    with with_settings(SERVER_URL="http://127.0.0.1:9", TOKEN_ENDPOINT=token_endpoint):
        for report in reports(lambda: KeycloakAdmin().users()):
            assert "AdminUnavailableError" in report
            assert_clean(report, keycloak)


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_the_admin_api_refusing(keycloak: Loopback, status: int) -> None:
    keycloak.route("/admin/realms/demo/users", Answer(status, b'{"error": "no"}'))
    with with_settings(SERVER_URL=keycloak.url):
        for report in reports(lambda: KeycloakAdmin().users()):
            assert f"HTTP {status}" in report
            assert_clean(report, keycloak)


KEY_REFUSED = Answer(400, b'{"error": "invalid_client", "error_description": "Unable to load"}')
SECRET_REFUSED = Answer(400, b'{"error": "unauthorized_client", "error_description": "bad"}')


def assert_no_key(report: str, pem: str) -> None:
    for line in pem.splitlines()[1:-1]:  # the base64 lines of the private key
        assert line not in report


@pytest.mark.parametrize("next_key", [False, True], ids=["one key", "with the next key"])
def test_a_private_key_client_refused(keycloak: Loopback, next_key: bool) -> None:
    keycloak.route(TOKEN_PATH, KEY_REFUSED)
    pems = [pem("ES256"), pem("ES256", 1)]
    client = key_settings("ES256", NEXT_PRIVATE_KEY=pems[1] if next_key else None)
    with with_settings(**client, SERVER_URL=keycloak.url):
        for report in reports(get_access_token):
            assert "Unable to load" in report
            assert_clean(report, keycloak)
            for key in pems:
                assert_no_key(report, key)
    assert len(assertions_sent(keycloak)) == (4 if next_key else 2)  # DEBUG on and off


def test_a_private_key_that_cannot_be_read() -> None:
    broken = pem("RS256").replace("M", "!")
    with with_settings(**{**key_settings(), "PRIVATE_KEY": broken}):
        for report in reports(get_access_token):
            assert "ConfigurationError" in report
            assert_no_key(report, broken)
            assert_no_key(report, pem("RS256"))


def test_every_fallback_secret_refused(keycloak: Loopback) -> None:
    keycloak.route(TOKEN_PATH, SECRET_REFUSED)
    fallback = "fallback-secret-that-must-not-show-0123456789"
    with with_settings(SERVER_URL=keycloak.url, FALLBACK_SECRETS=[fallback]):
        for report in reports(get_access_token):
            assert "unauthorized_client" in report
            assert_clean(report, keycloak)
            assert fallback not in report
    assert len(assertions_sent(keycloak)) == 4  # both secrets tried, DEBUG on and off


@pytest.mark.parametrize(
    "write",
    [
        lambda: KeycloakAdmin().set_password("u-1", PASSWORD),
        lambda: asyncio.run(AsyncKeycloakAdmin().set_password("u-1", PASSWORD)),
        lambda: KeycloakAdmin().create_user(
            {"username": "ada", "credentials": [{"type": "password", "value": PASSWORD}]}
        ),
    ],
    ids=["set_password", "async set_password", "create_user with credentials"],
)
def test_a_refused_password_is_not_on_the_page(keycloak: Loopback, write: Any) -> None:
    keycloak.route("/admin/realms/demo/users/u-1/reset-password", Answer(400, POLICY))
    keycloak.route("/admin/realms/demo/users", Answer(400, POLICY))
    with with_settings(SERVER_URL=keycloak.url):
        for report in reports(write):
            assert "AdminBadRequestError" in report and "Invalid password" in report
            assert PASSWORD not in report
            assert_clean(report, keycloak)
    assert PASSWORD.encode() in keycloak.everything_received()  # it was sent, and is not shown
