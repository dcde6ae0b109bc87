"""``manage.py fetch_token`` as a user runs it: a subprocess with the demo project's settings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from support.realm import realm_secrets

from .conftest import ROOT

pytestmark = pytest.mark.keycloak


def fetch_token(keycloak_url: str, *args: str, secret: str | None = None) -> Any:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "KEYCLOAK_SERVER_URL": keycloak_url,
        "KEYCLOAK_REALM": "demo",
        "KEYCLOAK_CLIENT_ID": "django-service",
        "KEYCLOAK_CLIENT_SECRET": secret or realm_secrets()["django-service"],
        "CACHE_URL": "locmemcache://",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "fetch_token", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_default_prints_the_token_alone(keycloak_server: str) -> None:
    result = fetch_token(keycloak_server)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].count(".") == 2  # one JWT, newline-terminated
    assert result.stdout.endswith("\n")


def test_json(keycloak_server: str) -> None:
    result = fetch_token(keycloak_server, "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["token_type"] == "Bearer"
    assert data["from_cache"] is False
    assert 290 <= data["expires_in"] <= 300
    assert "profile" in data["scope"]


def test_decode(keycloak_server: str) -> None:
    result = fetch_token(keycloak_server, "--decode")
    assert result.returncode == 0, result.stderr
    claims = json.loads(result.stdout)
    assert claims["azp"] == "django-service"
    assert claims["iss"] == f"{keycloak_server}/realms/demo"
    assert "not verifying" in result.stderr or "without verifying" in result.stderr


def test_wrong_secret_fails_with_one_line_and_no_secret(keycloak_server: str) -> None:
    wrong = "this-is-the-wrong-secret-but-long-enough-0123456789"
    result = fetch_token(keycloak_server, secret=wrong)
    assert result.returncode != 0
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("CommandError")]
    assert errors == [
        "CommandError: UnauthorizedClientError: unauthorized_client: Client authentication with "
        "client secret signed JWT failed: Signature on JWT token by client secret failed "
        "validation (HTTP 400) Hint: CLIENT_SECRET is not the client's secret (Keycloak: "
        "Clients > django-service > Credentials)."
    ]
    assert wrong not in result.stderr
    assert realm_secrets()["django-service"] not in result.stderr + result.stdout


def test_a_wrong_path_prefix_and_a_wrong_realm_are_told_apart(keycloak_server: str) -> None:
    """Keycloak 26 answers 404 to both: 'Realm does not exist', or 'Unable to find matching
    target resource method' for a path it does not serve (pre-17 Keycloak's /auth prefix)."""
    prefixed = fetch_token(f"{keycloak_server}/auth")
    # (the demo project configures logging: its log lines come first)
    [line] = [line for line in prefixed.stderr.splitlines() if line.startswith("CommandError")]
    assert line.startswith(
        "CommandError: TokenEndpointNotFoundError: Nothing answers at the token endpoint "
        f"{keycloak_server}/auth/realms/demo/protocol/openid-connect/token (HTTP 404 'Unable to "
        "find matching target resource method'). Check the path of SERVER_URL: "
    )
    wrong_realm = subprocess.run(
        [sys.executable, "manage.py", "fetch_token"],
        cwd=ROOT,
        env={**os.environ, "KEYCLOAK_SERVER_URL": keycloak_server, "KEYCLOAK_REALM": "Demo",
             "DJANGO_SETTINGS_MODULE": "demo_project.settings", "CACHE_URL": "locmemcache://",
             "KEYCLOAK_CLIENT_SECRET": realm_secrets()["django-service"]},
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert [line for line in wrong_realm.stderr.splitlines() if "CommandError" in line] == [
        f"CommandError: TokenEndpointNotFoundError: Keycloak at {keycloak_server} has no realm "
        "'Demo' (HTTP 404 'Realm does not exist'). Check REALM: the realm's name as Keycloak's "
        "realm selector shows it."
    ]
