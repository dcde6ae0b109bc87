"""The pytest plugin of ``keycloak_jwt_auth`` (entry point ``pytest11``): the ``fake_keycloak``
fixture, a started ``FakeKeycloak`` whose ``.settings()`` is the test's ``KEYCLOAK_JWT_AUTH``
(through pytest-django's ``settings`` fixture, when it is installed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import FakeKeycloak


@pytest.fixture
def fake_keycloak(request: pytest.FixtureRequest) -> Iterator[FakeKeycloak]:
    from .testing import FakeKeycloak  # imported here: a test run that never asks loads nothing

    with FakeKeycloak() as keycloak:
        try:
            settings = request.getfixturevalue("settings")
        except pytest.FixtureLookupError:  # no pytest-django: configure it yourself
            settings = None
        if settings is not None:
            settings.KEYCLOAK_JWT_AUTH = keycloak.settings()
        yield keycloak
