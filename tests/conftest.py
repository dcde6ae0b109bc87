from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import django.utils.deprecation
import pytest
import requests
import responses
from django.conf import settings
from django.core.cache import caches
from django.core.management import CommandError, call_command
from django.core.signals import setting_changed
from django.test import override_settings

from keycloak_jwt_auth.settings import SETTING_NAME

from .loopback import Answer, Loopback

# The fixture fake_keycloak; the pytest11 entry point loads it once the package is installed.
pytest_plugins = ["keycloak_jwt_auth.pytest_plugin"]

TOKEN_URL = "https://keycloak.test/realms/demo/protocol/openid-connect/token"
ADMIN_URL = "https://keycloak.test/admin/realms/demo"
LOOPBACK_TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"


def pytest_configure(config: pytest.Config) -> None:
    """Every ``RemovedInDjango*Warning`` of the installed Django fails the tests. Named from what
    this Django defines (6.1 has no RemovedInDjango60Warning), so the filters load on each."""
    for name in sorted(vars(django.utils.deprecation)):
        if re.fullmatch(r"RemovedInDjango\w+Warning", name):
            config.addinivalue_line("filterwarnings", f"error::django.utils.deprecation.{name}")


def reset_app_state() -> None:
    """What a settings change does: forget configs, managers and sessions."""
    setting_changed.send(sender=None, setting=SETTING_NAME, value=None, enter=False)


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    reset_app_state()
    for cache in caches.all():
        cache.clear()
    yield
    reset_app_state()


@pytest.fixture(autouse=True)
def _no_backoff_sleep(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """Retries back off for a random time; unit tests need not wait for it."""
    if "keycloak" not in request.keywords and "redis" not in request.keywords:
        monkeypatch.setattr("keycloak_jwt_auth.tokens.flow.random.uniform", lambda a, b: 0.0)


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def token_body(value: str = "token-1", expires_in: int = 300, **extra: Any) -> dict[str, Any]:
    return {
        "access_token": value,
        "expires_in": expires_in,
        "token_type": "Bearer",
        "scope": "profile email",
        **extra,
    }


@pytest.fixture
def token_endpoint(mocked: responses.RequestsMock) -> Callable[..., Any]:
    """Register answers for the token endpoint, in order; returns the responses mock."""

    def add(*bodies: dict[str, Any], status: int = 200) -> responses.RequestsMock:
        for body in bodies or (token_body(),):
            mocked.post(TOKEN_URL, json=body, status=status)
        return mocked

    return add


def token_calls(mocked: responses.RequestsMock) -> list[Any]:
    return [call for call in mocked.calls if call.request.url == TOKEN_URL]


@pytest.fixture
def sent_kwargs(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The keyword arguments of the next ``Session.request``, which then fails to connect."""
    seen: dict[str, Any] = {}

    def capture(self: Any, method: str, url: str, **kwargs: Any) -> Any:
        seen.update(kwargs)
        raise requests.ConnectionError("stop here")

    monkeypatch.setattr(requests.Session, "request", capture)
    return seen


def run_command(*args: str) -> tuple[str, str, int]:
    """``call_command`` as a shell would see it: (stdout, stderr, exit code)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command(*args, stdout=out, stderr=err)
    except CommandError as exc:
        err.write(f"CommandError: {exc}\n")
        return out.getvalue(), err.getvalue(), exc.returncode
    return out.getvalue(), err.getvalue(), 0


@pytest.fixture(scope="module")
def loopback_server() -> Iterator[Loopback]:
    with Loopback() as server:  # one per module: stopping one takes half a second
        yield server


@pytest.fixture
def loopback_keycloak(loopback_server: Loopback) -> Iterator[Loopback]:
    """The module's loopback Keycloak, nothing received yet, only its token endpoint routed (a
    token for any client), and the app's settings pointing at it."""
    loopback_server.received.clear()
    loopback_server.routes.clear()
    token = {"access_token": "loopback-token", "expires_in": 300, "token_type": "Bearer"}
    loopback_server.route(LOOPBACK_TOKEN_PATH, Answer(200, json.dumps(token).encode()))
    server_url = {**settings.KEYCLOAK_JWT_AUTH, "SERVER_URL": loopback_server.url}
    with override_settings(KEYCLOAK_JWT_AUTH=server_url):
        yield loopback_server
