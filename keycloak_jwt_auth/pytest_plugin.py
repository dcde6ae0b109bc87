"""The pytest plugin of ``keycloak_jwt_auth`` (entry point ``pytest11``; with plugin autoload
off, ``pytest_plugins = ["keycloak_jwt_auth.pytest_plugin"]`` in a ``conftest.py``).

Fixtures: ``fake_keycloak`` (a new ``FakeKeycloak`` per test), ``fake_keycloak_server`` (one for
the session) with ``shared_fake_keycloak`` (it, reset for each test), and ``keycloak_offline``
(real token requests refused; for every test with the ini option ``keycloak_offline = true``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from .testing import FakeKeycloak

# Imports stay inside the fixtures: a test run that never asks for them loads nothing.


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "keycloak_offline",
        "Refuse every token request to a server that is not a running FakeKeycloak.",
        type="bool",
        default=False,
    )


@pytest.fixture
def fake_keycloak(request: pytest.FixtureRequest) -> Iterator[FakeKeycloak]:
    """A started ``FakeKeycloak`` of its own, stopped after the test. With pytest-django, the
    project's ``KEYCLOAK_JWT_AUTH`` is kept for the test with the fake's connection keys laid
    over it, and every named client of ``CLIENTS`` is registered in the fake and pointed at it
    (see ``keycloak_jwt_auth.testing.overlay``). Its tokens are cached apart from any other
    fake's, even one that listened on the same port."""
    from .testing import FakeKeycloak

    with FakeKeycloak() as keycloak:
        _point_settings_at(keycloak, request)
        yield keycloak


@pytest.fixture(scope="session")
def fake_keycloak_server() -> Iterator[FakeKeycloak]:
    """One ``FakeKeycloak`` for the whole session; tests use it as ``shared_fake_keycloak``."""
    from .testing import FakeKeycloak

    with FakeKeycloak() as keycloak:
        yield keycloak


@pytest.fixture
def shared_fake_keycloak(
    fake_keycloak_server: FakeKeycloak, request: pytest.FixtureRequest
) -> FakeKeycloak:
    """The session's ``FakeKeycloak``, reset for this test (``FakeKeycloak.reset``: new secrets,
    no users, nothing received) and applied like ``fake_keycloak``; no server starts or stops."""
    fake_keycloak_server.reset()
    _point_settings_at(fake_keycloak_server, request)
    return fake_keycloak_server


@pytest.fixture
def keycloak_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test when a token request would go to anything but a running ``FakeKeycloak``
    (a test that forgot ``fake_keycloak`` would otherwise call the real ``SERVER_URL``)."""
    from .testing import offline

    offline.refuse_real_token_requests(monkeypatch)


@pytest.fixture(autouse=True)
def _keycloak_offline_when_configured(request: pytest.FixtureRequest) -> None:
    if request.config.getini("keycloak_offline"):
        request.getfixturevalue("keycloak_offline")


def _point_settings_at(keycloak: FakeKeycloak, request: pytest.FixtureRequest) -> None:
    try:
        settings: Any = request.getfixturevalue("settings")
    except pytest.FixtureLookupError:  # no pytest-django: configure it yourself
        return
    from .testing.overlay import overlay_settings

    settings.KEYCLOAK_JWT_AUTH = overlay_settings(
        keycloak, getattr(settings, "KEYCLOAK_JWT_AUTH", {})
    )
