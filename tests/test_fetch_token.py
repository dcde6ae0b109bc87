from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import jwt
import pytest
import responses
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.testing import FakeKeycloak

from .conftest import TOKEN_URL, run_command, token_body, token_calls

SECRET = settings.TEST_SECRET
ROOT = Path(__file__).resolve().parents[1]


def a_jwt(**claims: Any) -> str:
    return jwt.encode(
        {"azp": "django-service", "iss": "https://keycloak.test/realms/demo", **claims},
        "k" * 32,
        algorithm="HS256",
    )


def test_prints_the_token_alone(token_endpoint: Any) -> None:
    token_endpoint(token_body("the-token"))
    out, err, code = run_command("fetch_token")
    assert (out, err, code) == ("the-token\n", "", 0)


def test_json_output(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("tok", expires_in=300))
    first = json.loads(run_command("fetch_token", "--json")[0])
    second = json.loads(run_command("fetch_token", "--json")[0])
    assert set(first) == {
        "access_token",
        "token_type",
        "expires_in",
        "expires_at",
        "from_cache",
        "scope",
    }
    assert first["access_token"] == "tok" and first["token_type"] == "Bearer"
    assert 298 <= first["expires_in"] <= 300
    assert datetime.fromisoformat(first["expires_at"]).tzinfo is not None
    assert first["scope"] == "profile email"
    assert (first["from_cache"], second["from_cache"]) == (False, True)
    assert len(token_calls(mocked)) == 1


def test_force_skips_the_cache(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("one"), token_body("two"))
    run_command("fetch_token")
    out = json.loads(run_command("fetch_token", "--force", "--json")[0])
    assert (out["access_token"], out["from_cache"]) == ("two", False)
    assert len(token_calls(mocked)) == 2


def test_decode_prints_claims_and_notes_on_stderr(token_endpoint: Any) -> None:
    token_endpoint(token_body(a_jwt(scope="email")))
    out, err, code = run_command("fetch_token", "--decode")
    assert code == 0
    assert json.loads(out) == {
        "azp": "django-service",
        "iss": "https://keycloak.test/realms/demo",
        "scope": "email",
    }
    assert "without verifying the signature" in err


def test_decode_of_an_opaque_token_fails_cleanly(token_endpoint: Any) -> None:
    token_endpoint(token_body("opaque"))
    out, err, code = run_command("fetch_token", "--decode")
    assert (out, code) == ("", 1)
    assert "not a JWT" in err


def test_named_client(token_endpoint: Any, mocked: responses.RequestsMock) -> None:
    other = "https://keycloak.test/realms/other/protocol/openid-connect/token"
    mocked.post(other, json=token_body("other-token"))
    clients = {"other": {"REALM": "other"}}
    with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "CLIENTS": clients}):
        assert run_command("fetch_token", "--client", "other")[0] == "other-token\n"
        out, err, code = run_command("fetch_token", "--client", "missing")
    assert code == 1 and "Unknown Keycloak client 'missing'" in err


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {
                "error": "invalid_client",
                "error_description": "Invalid client or Invalid client credentials",
            },
            "InvalidClientError: invalid_client: "
            "Invalid client or Invalid client credentials (HTTP 401) Hint: No client "
            "django-service here that authenticates with 'Signed JWT with client secret': check "
            "CLIENT_ID and REALM, and Keycloak: Clients > django-service > Credentials > Client "
            "Authenticator.",
        ),
        (
            400,
            {"error": "unauthorized_client", "error_description": "Client not allowed"},
            "UnauthorizedClientError: unauthorized_client: Client not allowed (HTTP 400)",
        ),
    ],
)
def test_failure_is_one_line_on_stderr(
    mocked: responses.RequestsMock, status: int, body: dict[str, str], expected: str
) -> None:
    mocked.post(TOKEN_URL, json=body, status=status)
    out, err, code = run_command("fetch_token", "--json")
    assert out == ""
    assert code == 1
    assert err == f"CommandError: {expected}\n"
    assert SECRET not in err


def test_network_failure_names_the_cause() -> None:
    custom = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": "http://127.0.0.1:9", "RETRIES": 0}
    with override_settings(KEYCLOAK_JWT_AUTH=custom):
        out, err, code = run_command("fetch_token")
    assert (out, code) == ("", 1)
    assert err.count("\n") == 1 and "Connection refused" in err


def test_html_answer(mocked: responses.RequestsMock) -> None:
    mocked.post(
        TOKEN_URL, body="<html>Service Unavailable</html>", status=404, content_type="text/html"
    )
    out, err, code = run_command("fetch_token")
    assert code == 1 and "HTTP 404 with text/html" in err


def test_json_and_decode_exclude_each_other() -> None:
    out, err, code = run_command("fetch_token", "--json", "--decode")
    assert code != 0 and "not allowed with argument" in err


def test_a_wrong_secret_gets_the_doctors_hint(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(CLIENT_SECRET="w" * 32)
    out, err, code = run_command("fetch_token")
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("CommandError: UnauthorizedClientError: unauthorized_client: ")
    assert err.endswith(
        "failed validation (HTTP 400) Hint: CLIENT_SECRET is not the client's secret "
        "(Keycloak: Clients > django-service > Credentials).\n"
    )


def test_an_unreachable_server_is_one_line_without_the_check_block_or_logs() -> None:
    """As a shell runs it: system checks on (tests.settings caches in LocMem: W002), logging as
    Django leaves it, keycloak.test unresolvable, two retries."""
    result = subprocess.run(
        [sys.executable, "-m", "django", "fetch_token", "--settings", "tests.settings"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stdout) == (1, "")
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "CommandError: TokenEndpointUnavailableError: Cannot reach the token endpoint "
        "https://keycloak.test/realms/demo/protocol/openid-connect/token: "
    )
