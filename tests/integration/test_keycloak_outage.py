"""Keycloak going away and coming back while Django keeps running."""

from __future__ import annotations

import time

import pytest

from keycloak_jwt_auth import KeycloakUnavailableError, get_access_token, get_token_manager

from .conftest import keycloak_ready, run_script

pytestmark = pytest.mark.keycloak


def test_cached_token_outlives_an_outage_then_recovers(real_keycloak: str) -> None:
    token = get_access_token("short-lived")  # 10 s tokens
    manager = get_token_manager("short-lived")
    expires_at = manager.peek().expires_at  # type: ignore[union-attr]
    run_script("keycloak.sh", "stop")
    try:
        assert not keycloak_ready()
        # Until expiry every call gets the cached token, though renewal fails behind it.
        while time.time() < expires_at - 1.5:
            assert get_access_token("short-lived") == token
            time.sleep(0.2)
        time.sleep(max(0.0, expires_at - time.time()))
        with pytest.raises(KeycloakUnavailableError) as info:
            get_access_token("short-lived")
        assert "Connection refused" in str(info.value)
    finally:
        run_script("keycloak.sh", "start")
    # Same process, same manager: the next call simply works again.
    fresh = get_access_token("short-lived")
    assert fresh != token
    assert get_token_manager("short-lived") is manager
