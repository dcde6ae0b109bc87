"""The shared store survives whatever the cache holds: a value that is not a usable token is a
miss, logged once, and overwritten by the next fetch."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest
from django.core.cache import caches

from keycloak_jwt_auth import get_access_token, get_token_manager
from keycloak_jwt_auth.tokens.token import AccessToken

from .conftest import token_body, token_calls

NOW = time.time()  # poisoned values are refused whenever the test runs; good ones use now


def stored(now: float = NOW, **changes: Any) -> str:
    good = {"value": "shared", "expires_at": now + 300, "token_type": "Bearer", "issued_at": now}
    return json.dumps({**good, **changes})


POISONED = [
    pytest.param(stored(value=None), id="value null"),
    pytest.param(stored(value=""), id="value empty"),
    pytest.param(stored(value="a\r\nX-Injected: 1"), id="value with CRLF"),
    pytest.param(stored(expires_at="inf"), id="expires_at a string"),
    pytest.param(stored(expires_at=float("inf")), id="expires_at Infinity"),
    pytest.param(stored(expires_at=NOW + 1e12), id="lifetime absurd"),
    pytest.param(stored(expires_at=10**400), id="expires_at 400 digits"),
    pytest.param(stored(token_type="DPoP"), id="not Bearer"),
    pytest.param(stored(issued_at=-1e10, expires_at=-1e10 + 300), id="issued in year -347"),
    pytest.param(stored(issued_at=1e11, expires_at=1e11 + 300), id="issued in year 5138"),
    pytest.param("[" * 10_000 + "]" * 10_000, id="deeply nested"),
    pytest.param("{broken", id="not JSON"),
    pytest.param(12345, id="an int"),
    pytest.param({"value": "shared"}, id="a pickled dict"),
]


@pytest.mark.parametrize("poison", POISONED)
def test_a_poisoned_shared_value_is_a_miss_and_is_replaced(
    token_endpoint: Any, poison: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mocked = token_endpoint(token_body("fresh"), token_body("unwanted"))
    key = get_token_manager().store.key
    caches["default"].set(key, poison, 300)
    with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
        for _ in range(3):
            assert get_access_token() == "fresh"
        get_token_manager().peek()
    assert len(token_calls(mocked)) == 1
    assert AccessToken.from_json(caches["default"].get(key)).value == "fresh"  # overwritten
    ignored = [r for r in caplog.records if "Ignoring the cached token" in r.getMessage()]
    assert len(ignored) == 1
    assert not any("falls back to in-process" in r.getMessage() for r in caplog.records)


def test_bytes_the_backend_cannot_unpickle_are_a_miss_not_an_outage(
    token_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mocked = token_endpoint(token_body("fresh"), token_body("unwanted"))
    cache: Any = caches["default"]
    key = get_token_manager().store.key
    cache.set(key, "placeholder", 300)
    cache._cache[cache.make_key(key)] = b"\x80\x05not a pickle"  # what another writer left
    with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
        assert get_access_token() == "fresh"
    assert len(token_calls(mocked)) == 1
    assert AccessToken.from_json(cache.get(key)).value == "fresh"  # replaced: sharing goes on
    assert not any("falls back to in-process" in r.getMessage() for r in caplog.records)


def test_a_good_shared_value_is_used() -> None:
    caches["default"].set(get_token_manager().store.key, stored(time.time()), 300)
    assert get_access_token() == "shared"
