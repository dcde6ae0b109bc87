"""The test kit as a project's own suite uses it: fakes whose tokens never leak into each other,
the fixture keeping the project's settings, the session-scoped fake, the offline guard, and the
fake served from the command line."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import override_settings

from keycloak_jwt_auth import AsyncKeycloakAdmin, KeycloakAdmin, get_access_token
from keycloak_jwt_auth.testing import FakeKeycloak
from keycloak_jwt_auth.testing.overlay import overlay_settings

ROOT = Path(__file__).resolve().parents[1]
# As a project loads the plugin when plugin autoload is off (the entry point is the same module).
PLUGIN = ("-p", "keycloak_jwt_auth.pytest_plugin")


def test_two_fakes_on_one_port_do_not_share_a_token() -> None:
    with FakeKeycloak() as first, override_settings(KEYCLOAK_JWT_AUTH=first.settings()):
        first_token = get_access_token()
    with (
        FakeKeycloak(port=first.port) as second,
        override_settings(KEYCLOAK_JWT_AUTH=second.settings()),
    ):
        assert second.url == first.url  # the same URL, server, realm and client id
        token = get_access_token()
        assert second.token_requests == 1
        assert token != first_token
        assert second.verify_token(token)["azp"] == "django-service"


def test_the_fixture_keeps_the_projects_settings_and_named_clients(
    settings: Any, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    settings.KEYCLOAK_JWT_AUTH = {
        "SERVER_URL": "https://keycloak.example.com",
        "REALM": "prod",
        "CLIENT_ID": "web",
        "AUTH_METHOD": "private_key_jwt",
        "PRIVATE_KEY_FILE": str(tmp_path / "absent.pem"),  # would not load: replaced
        "CACHE_ALIAS": "shared",
        "TIMEOUT": 3,
        "CLIENTS": {"reports": {"CLIENT_ID": "reports-svc", "SCOPE": "email"}},
    }
    kc: FakeKeycloak = request.getfixturevalue("fake_keycloak")
    kc.add_user("ada")
    assert [u["username"] for u in KeycloakAdmin("reports").users()] == ["ada"]
    assert KeycloakAdmin().users_count() == 1
    applied = settings.KEYCLOAK_JWT_AUTH
    assert (applied["CACHE_ALIAS"], applied["TIMEOUT"]) == ("shared", 3)
    assert "PRIVATE_KEY_FILE" not in applied
    assert applied["CLIENTS"]["reports"]["SCOPE"] == "email"
    assert {"django-service", "reports-svc"} <= set(kc.clients)


def test_a_named_client_without_its_own_client_id_follows_the_default() -> None:
    kc = FakeKeycloak()
    overlaid = overlay_settings(kc, {"REALM": "x", "CLIENTS": {"audit": {"RETRIES": 0}}})
    assert overlaid["CLIENTS"] == {"audit": {"RETRIES": 0}}
    assert overlaid["REALM"] == "demo"
    assert overlay_settings(kc, None) == kc.settings()


@pytest.mark.anyio
async def test_async_code_against_the_fixture(fake_keycloak: FakeKeycloak) -> None:
    fake_keycloak.add_user("ada")
    assert [u["username"] for u in await AsyncKeycloakAdmin().users()] == ["ada"]


def test_reset_forgets_everything_a_test_left(fake_keycloak: FakeKeycloak) -> None:
    secret = fake_keycloak.client().secret
    fake_keycloak.add_user("ada")
    get_access_token()
    fake_keycloak.fail("5xx")
    fake_keycloak.reset()
    assert (fake_keycloak.users, fake_keycloak.received) == ([], [])
    assert fake_keycloak.client().secret != secret
    assert requests.get(fake_keycloak.issuer, timeout=5).status_code == 404  # healthy again


def run_suite(tmp_path: Path, tests: str, *, ini: str = "") -> subprocess.CompletedProcess[str]:
    """Run ``tests`` as a project's own pytest suite (pytest-django, the plugin by entry point)."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(tests))
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nDJANGO_SETTINGS_MODULE = tests.settings\n{ini}"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *PLUGIN, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


SHARED_SERVER_TESTS = """
    from keycloak_jwt_auth import get_access_token

    PORTS = set()

    def test_one(shared_fake_keycloak):
        shared_fake_keycloak.add_user("ada")
        get_access_token()
        PORTS.add(shared_fake_keycloak.port)
        assert shared_fake_keycloak.token_requests == 1

    def test_two(shared_fake_keycloak):
        assert shared_fake_keycloak.users == []
        token = get_access_token()
        assert shared_fake_keycloak.token_requests == 1  # not the token of test_one
        assert shared_fake_keycloak.verify_token(token)
        assert PORTS == {shared_fake_keycloak.port}  # one server for both
"""


def test_the_session_scoped_fake_is_reset_for_each_test(tmp_path: Path) -> None:
    result = run_suite(tmp_path, SHARED_SERVER_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


GUARDED_TESTS = """
    from keycloak_jwt_auth import get_access_token

    def test_forgot_the_fixture():
        get_access_token()

    def test_with_the_fixture(fake_keycloak):
        get_access_token()
        assert fake_keycloak.token_requests == 1

    def test_a_fake_that_is_down_is_still_a_fake(fake_keycloak):
        import pytest
        from keycloak_jwt_auth.exceptions import TokenEndpointUnavailableError
        fake_keycloak.fail("down")
        with pytest.raises(TokenEndpointUnavailableError):
            get_access_token()
"""


def test_the_offline_guard_fails_a_test_that_would_call_the_real_keycloak(
    tmp_path: Path,
) -> None:
    result = run_suite(tmp_path, GUARDED_TESTS, ini="keycloak_offline = true\n")
    assert result.returncode == 1
    assert "1 failed, 2 passed" in result.stdout
    assert (
        "keycloak_offline: client 'default' asked "
        "https://keycloak.test/realms/demo/protocol/openid-connect/token for a token"
    ) in result.stdout


def test_the_offline_guard_is_off_unless_asked(tmp_path: Path) -> None:
    result = run_suite(tmp_path, GUARDED_TESTS)
    assert "keycloak_offline" not in result.stdout
    assert "TokenEndpointUnavailableError" in result.stdout  # keycloak.test does not resolve


def test_python_m_testing_serves_until_interrupted(tmp_path: Path) -> None:
    with FakeKeycloak() as probe:
        port = probe.port  # free now: the command may take it
    command = [sys.executable, "-m", "keycloak_jwt_auth.testing", "--port", str(port)]
    command += ["--client", "web", "--secret", "s" * 32, "--client", "reports"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert server.stdout is not None
        printed = ""
        while "Ctrl-C" not in printed:  # the settings, then the line saying it serves
            printed += server.stdout.readline() or pytest.fail(f"exited: {printed}")
        assert f"FakeKeycloak serving realm 'demo' at http://127.0.0.1:{port}" in printed
        discovery = f"http://127.0.0.1:{port}/realms/demo/.well-known/openid-configuration"
        assert requests.get(discovery, timeout=5).status_code == 200
        server.send_signal(signal.SIGINT)
        printed += server.communicate(timeout=10)[0]
    finally:
        server.kill()
    assert server.returncode == 0
    assert f"'SERVER_URL': 'http://127.0.0.1:{port}'" in printed
    assert f"'CLIENT_SECRET': '{'s' * 32}'" in printed
    assert "'CLIENTS': {'reports': {'CLIENT_ID': 'reports'" in printed
    assert printed.rstrip().endswith("Stopped.")
