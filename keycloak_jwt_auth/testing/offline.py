"""The opt-in guard of the test kit: a token request to anything but a running
``FakeKeycloak`` fails the test instead of reaching a real Keycloak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest

from keycloak_jwt_auth.http.steps import Send
from keycloak_jwt_auth.settings import ClientConfig
from keycloak_jwt_auth.testing.server import FakeKeycloak
from keycloak_jwt_auth.tokens import flow


def refuse_real_token_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """For the test: every token request is checked against the fakes listening now."""
    real_request = flow.token_request

    def guarded(config: ClientConfig, *args: Any, **kwargs: Any) -> Callable[[str], Send]:
        if _origin(config.token_endpoint) not in FakeKeycloak.listening:
            pytest.fail(
                f"keycloak_offline: client {config.name!r} asked {config.token_endpoint} for a "
                "token, which is no running FakeKeycloak; use the fake_keycloak fixture",
                pytrace=False,
            )
        return real_request(config, *args, **kwargs)  # (the DPoP signer, the clock)

    monkeypatch.setattr(flow, "token_request", guarded)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
