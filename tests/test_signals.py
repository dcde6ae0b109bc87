"""The operations signals: sent from the sync and async paths, never broken by a receiver."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import responses
from django.conf import settings
from django.dispatch import Signal
from django.test import override_settings

from keycloak_jwt_auth import aget_access_token, get_access_token, get_token_manager
from keycloak_jwt_auth.exceptions import InvalidClientError, TokenEndpointUnavailableError
from keycloak_jwt_auth.signals import (
    token_cache_failed,
    token_cache_recovered,
    token_fetch_failed,
    token_fetched,
)
from keycloak_jwt_auth.tokens.token import AccessToken

from .conftest import TOKEN_URL, token_body
from .test_manager import wait_for_renewal

Received = list[dict[str, Any]]


@pytest.fixture
def listen() -> Iterator[Callable[[Signal], Received]]:
    """Connect a recording receiver to a signal for the test; returns what it receives."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(signal: Signal) -> Received:
        received: Received = []

        def receiver(**kwargs: Any) -> None:
            received.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return received

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)


def test_a_fetch_is_told_once_and_the_warm_path_tells_nothing(
    token_endpoint: Any, listen: Callable[[Signal], Received]
) -> None:
    token_endpoint(token_body("t", expires_in=300))
    fetched = listen(token_fetched)
    for _ in range(5):
        assert get_access_token() == "t"
    [event] = fetched
    assert event["client"] == "default"
    assert event["renewal"] is False
    assert 295 < event["expires_in"] <= 300
    assert 0 <= event["duration"] < 5
    assert event["sender"].__name__ == "TokenManager"
    assert "t" not in {str(v) for v in event.values()}  # never the token itself


def test_replacing_a_valid_token_is_a_renewal(
    token_endpoint: Any, listen: Callable[[Signal], Received]
) -> None:
    token_endpoint(token_body("old"), token_body("new"), token_body("newer"))
    fetched = listen(token_fetched)
    get_access_token()
    get_access_token(force_refresh=True)
    manager = get_token_manager()
    # A token whose renewal is due (30 s left of 300): the renewal path replaces it.
    due = AccessToken(value="due", expires_at=time.time() + 30, issued_at=time.time() - 270)
    manager.store.write(due)
    manager._serving = None
    assert get_access_token() == "due"
    wait_for_renewal()
    assert [e["renewal"] for e in fetched] == [False, True, True]


def test_a_refusal_is_told_and_still_raised(
    mocked: responses.RequestsMock, listen: Callable[[Signal], Received]
) -> None:
    mocked.post(TOKEN_URL, json={"error": "invalid_client", "error_description": "x"}, status=401)
    failed, fetched = listen(token_fetch_failed), listen(token_fetched)
    with pytest.raises(InvalidClientError) as info:
        get_access_token()
    [event] = failed
    assert (event["client"], event["error"]) == ("default", info.value)
    assert fetched == []


def test_a_receiver_that_raises_is_logged_and_breaks_nothing(
    token_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token_endpoint(token_body("t"))

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("the receiver's own bug")

    token_fetched.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="django.dispatch"):
            assert get_access_token() == "t"
    finally:
        token_fetched.disconnect(broken)
    [record] = [r for r in caplog.records if r.name == "django.dispatch"]
    assert "the receiver's own bug" in record.getMessage()


def test_the_async_path_tells_the_same(
    mocked: responses.RequestsMock, listen: Callable[[Signal], Received]
) -> None:
    mocked.post(TOKEN_URL, json=token_body("a"))
    mocked.post(TOKEN_URL, body=requests.ConnectionError("refused"))
    fetched, failed = listen(token_fetched), listen(token_fetch_failed)

    async def main() -> None:
        assert await aget_access_token() == "a"
        no_retries = {**settings.KEYCLOAK_JWT_AUTH, "RETRIES": 0}
        with (
            override_settings(KEYCLOAK_JWT_AUTH=no_retries),
            pytest.raises(TokenEndpointUnavailableError),
        ):
            await aget_access_token(force_refresh=True)

    asyncio.run(main())
    assert [e["client"] for e in fetched] == ["default"]
    assert isinstance(failed[0]["error"], TokenEndpointUnavailableError)


def test_the_cache_failing_and_recovering_is_told_once_each(
    token_endpoint: Any,
    monkeypatch: pytest.MonkeyPatch,
    listen: Callable[[Signal], Received],
) -> None:
    token_endpoint(token_body("t"))
    failed, recovered = listen(token_cache_failed), listen(token_cache_recovered)
    manager = get_token_manager()
    with override_settings(CACHES={"default": {"BACKEND": "tests.caches.BrokenCache"}}):
        for _ in range(3):
            manager.peek()
        monkeypatch.setattr("keycloak_jwt_auth.tokens.store.CACHE_RETRY_INTERVAL", 0.0)
        manager.store._retry_at = 0.0
        manager.peek()
    manager.peek()  # the real cache answers again
    manager.peek()
    assert [e["client"] for e in failed] == ["default"]
    assert "Connection refused" in str(failed[0]["error"])
    assert [e["client"] for e in recovered] == ["default"]
    assert manager.store.failures == 2
