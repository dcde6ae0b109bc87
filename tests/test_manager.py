from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import responses
from django.conf import settings
from django.core.cache import cache, caches
from django.test import override_settings

from keycloak_jwt_auth import get_access_token, get_token_manager
from keycloak_jwt_auth.exceptions import InvalidClientError, TokenEndpointUnavailableError
from keycloak_jwt_auth.tokens.manager import Flight, TokenManager
from keycloak_jwt_auth.tokens.store import token_cache_key
from keycloak_jwt_auth.tokens.token import AccessToken

from . import caches as test_caches
from .conftest import TOKEN_URL, token_body, token_calls

BASE = settings.KEYCLOAK_JWT_AUTH


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(time, "time", fake)
    return fake


def other_process() -> TokenManager:
    """A manager with its own memo, sharing the cache: what another worker process has."""
    return TokenManager(get_token_manager().config)


def wait_for_renewal() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("keycloak-token-renewal"):
            thread.join(5)


def test_second_call_is_served_without_http(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("first"), token_body("second"))
    assert get_access_token() == "first"
    assert get_access_token() == "first"
    assert len(token_calls(mocked)) == 1


def test_shared_cache_serves_another_process(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("shared"), token_body("unwanted"))
    get_access_token()
    assert other_process().get_token().value == "shared"
    assert len(token_calls(mocked)) == 1


def test_cached_value_is_json_with_explicit_timeout(token_endpoint: Any) -> None:
    token_endpoint(token_body("v", expires_in=300))
    test_caches.calls.clear()
    recording = {"default": {"BACKEND": "tests.caches.RecordingCache"}}
    with override_settings(CACHES=recording):
        get_access_token()
        key = token_cache_key(get_token_manager().config)
        stored = caches["default"].get(key)
    assert isinstance(stored, str)
    assert json.loads(stored)["value"] == "v"
    sets = [c for c in test_caches.calls if c[0] == "set"]
    assert sets == [("set", key, sets[0][2])]
    assert 298 <= sets[0][2] <= 300
    adds = [c for c in test_caches.calls if c[0] == "add"]
    assert adds and all(isinstance(timeout, int) and timeout > 0 for _, _, timeout in adds)


def test_cache_key_is_namespaced() -> None:
    config = get_token_manager().config
    keys = {token_cache_key(config)}
    variants = [
        {"SERVER_URL": "https://other.test"},
        {"REALM": "r2"},
        {"CLIENT_ID": "c2"},
        {"SCOPE": "email"},
        {"ALGORITHM": "HS512", "CLIENT_SECRET": "k" * 64},
    ]
    for change in variants:
        with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **change}):
            keys.add(token_cache_key(get_token_manager().config))
    assert len(keys) == 1 + len(variants)
    assert all(k.startswith("keycloak_jwt_auth:") and len(k) < 250 for k in keys)


def test_renewal_starts_inside_the_margin(token_endpoint: Any, clock: Clock) -> None:
    mocked = token_endpoint(token_body("old", expires_in=300), token_body("new", expires_in=300))
    assert get_access_token() == "old"
    clock.now += 265  # 35 s left: outside the 30 s margin
    assert get_access_token() == "old"
    assert len(token_calls(mocked)) == 1
    clock.now += 10  # 25 s left: renew, but keep serving the valid token meanwhile
    assert get_access_token() == "old"
    wait_for_renewal()
    assert len(token_calls(mocked)) == 2
    clock.now += 1
    assert get_access_token() == "new"


def test_short_lived_token_is_not_renewed_on_every_call(token_endpoint: Any, clock: Clock) -> None:
    mocked = token_endpoint(token_body("short", expires_in=9), token_body("next", expires_in=9))
    get_access_token()
    clock.now += 5.5  # the 30 s margin is capped at a third of 9 s: renewal only from 6 s on
    for _ in range(100):
        assert get_access_token() == "short"
    assert len(token_calls(mocked)) == 1
    held = get_token_manager().peek()
    assert held is not None
    assert held.renew_from(30) == pytest.approx(clock.now - 5.5 + 6, abs=0.1)


def test_expired_token_is_replaced(token_endpoint: Any, clock: Clock) -> None:
    mocked = token_endpoint(token_body("old", expires_in=60), token_body("new", expires_in=60))
    get_access_token()
    clock.now += 61
    assert get_access_token() == "new"
    assert len(token_calls(mocked)) == 2


def test_expired_shared_entry_is_not_used(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("fresh"))
    stale = AccessToken(value="stale", expires_at=time.time() - 1, issued_at=time.time() - 301)
    cache.set(token_cache_key(get_token_manager().config), stale.to_json(), 60)
    assert get_access_token() == "fresh"
    assert len(token_calls(mocked)) == 1


def test_unreadable_shared_entry_is_ignored(token_endpoint: Any) -> None:
    token_endpoint(token_body("fresh"))
    cache.set(token_cache_key(get_token_manager().config), "{broken", 60)
    assert get_access_token() == "fresh"


def test_invalidate_drops_memo_and_shared_copy(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("one"), token_body("two"))
    get_access_token()
    get_token_manager().invalidate()
    assert cache.get(token_cache_key(get_token_manager().config)) is None
    assert get_access_token() == "two"
    assert len(token_calls(mocked)) == 2


def test_invalidate_of_a_stale_value_keeps_a_newer_shared_token(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("old"), token_body("newer"))
    stale_worker = other_process()
    assert stale_worker.get_token().value == "old"
    assert get_access_token(force_refresh=True) == "newer"
    stale_worker.invalidate("old")  # its 401 must not throw away the newer token
    assert stale_worker.get_token().value == "newer"
    assert len(token_calls(mocked)) == 2


def test_force_refresh_fetches_and_stores(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("a"), token_body("b"))
    get_access_token()
    assert get_access_token(force_refresh=True) == "b"
    assert other_process().get_token().value == "b"
    assert len(token_calls(mocked)) == 2


def test_32_threads_on_a_cold_cache_make_one_request(mocked: responses.RequestsMock) -> None:
    def slow_token(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.3)
        return 200, {}, json.dumps(token_body("once"))

    mocked.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
    start, results = threading.Barrier(32), []

    def worker() -> None:
        start.wait()
        results.append(get_access_token())

    threads = [threading.Thread(target=worker) for _ in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == ["once"] * 32
    assert len(token_calls(mocked)) == 1


def test_cold_failure_reaches_every_waiting_thread(mocked: responses.RequestsMock) -> None:
    def refuse(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.2)
        return 401, {}, json.dumps({"error": "invalid_client", "error_description": "bad"})

    mocked.add_callback(responses.POST, TOKEN_URL, callback=refuse)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            get_access_token()
        except InvalidClientError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(errors) == 8
    assert len(token_calls(mocked)) == 1
    assert (
        caches["default"].get(get_token_manager().store.lock_key) is None
    )  # released for the next try


def test_valid_token_is_served_while_one_renewal_runs(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    release = threading.Event()
    mocked.post(TOKEN_URL, json=token_body("old", expires_in=300))
    get_access_token()

    renewals: list[float] = []

    def blocked_renewal(request: Any) -> tuple[int, dict[str, str], str]:
        renewals.append(time.monotonic())
        release.wait(5)
        return 200, {}, json.dumps(token_body("new", expires_in=300))

    mocked.remove(responses.POST, TOKEN_URL)
    mocked.add_callback(responses.POST, TOKEN_URL, callback=blocked_renewal)
    clock.now += 290  # inside the margin
    served: list[str] = []
    started = time.monotonic()
    threads = [
        threading.Thread(target=lambda: served.extend(get_access_token() for _ in range(50)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert time.monotonic() - started < 2  # nobody waited for the blocked renewal
    assert set(served) == {"old"} and len(served) == 400
    assert len(renewals) == 1  # one renewal in flight, however many callers
    release.set()
    wait_for_renewal()
    clock.now += 1
    assert get_access_token() == "new"
    assert len(token_calls(mocked)) == 2


def test_inline_renewal_when_background_refresh_is_off(token_endpoint: Any, clock: Clock) -> None:
    mocked = token_endpoint(token_body("old"), token_body("new"))
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "BACKGROUND_REFRESH": False}):
        get_access_token()
        clock.now += 290
        assert get_access_token() == "old"  # the caller that renewed still gets a valid token
        assert len(token_calls(mocked)) == 2
        clock.now += 1
        assert get_access_token() == "new"


def test_failed_renewal_keeps_the_valid_token_and_backs_off(
    mocked: responses.RequestsMock, clock: Clock
) -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "LOCK_TIMEOUT": 10}):
        mocked.post(TOKEN_URL, json=token_body("old", expires_in=300))
        get_access_token()
        mocked.replace(responses.POST, TOKEN_URL, json={"error": "unknown_error"}, status=503)
        clock.now += 275
        for _ in range(20):
            assert get_access_token() == "old"
            wait_for_renewal()
            clock.now += 0.3
        # One renewal (with its retries), then the lock's timeout (10 s) holds further tries back.
        assert len(token_calls(mocked)) == 1 + 3
        clock.now += 10  # the lock has timed out; the token is still valid for 9 s
        assert get_access_token() == "old"
        wait_for_renewal()
        assert len(token_calls(mocked)) == 1 + 6


def test_no_token_and_keycloak_down_raises_unavailable(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("refused"))
    with pytest.raises(TokenEndpointUnavailableError):
        get_access_token()


def held_lock(owner: str) -> str:
    """A lock value as another live worker writes it: its owner and its latest deadline."""
    return f"{owner}:{time.time() + 1:.3f}"


def test_loser_of_the_shared_lock_takes_the_winners_token(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("mine"))
    winner = other_process()
    winner_token = AccessToken(value="winners", expires_at=time.time() + 300)
    assert caches["default"].add(winner.store.lock_key, held_lock("another-process"), 10)

    def winner_stores() -> None:
        time.sleep(0.3)
        caches["default"].set(winner.store.key, winner_token.to_json(), 300)
        caches["default"].delete(winner.store.lock_key)  # a winner releases its lock when done

    threading.Thread(target=winner_stores).start()
    assert get_access_token() == "winners"
    assert len(token_calls(mocked)) == 0


def test_dead_lock_holder_is_outwaited(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("mine"))
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "LOCK_TIMEOUT": 1}):
        manager = get_token_manager()
        caches["default"].add(
            manager.store.lock_key, held_lock("killed-process"), 1
        )  # never released
        started = time.monotonic()
        assert get_access_token() == "mine"
    assert 0.5 < time.monotonic() - started < 3
    assert len(token_calls(mocked)) == 1


@pytest.fixture
def broken_cache() -> Iterator[None]:
    with override_settings(CACHES={"default": {"BACKEND": "tests.caches.BrokenCache"}}):
        yield


def test_broken_cache_degrades_to_memory_with_one_warning(
    token_endpoint: Any, broken_cache: None, caplog: pytest.LogCaptureFixture, clock: Clock
) -> None:
    mocked = token_endpoint(token_body("still-works"), token_body("renewed"))
    with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
        assert get_access_token() == "still-works"
        assert get_access_token() == "still-works"
        clock.now += 290
        get_access_token()
        wait_for_renewal()
        clock.now += 1
        assert get_access_token() == "renewed"
    warnings = [r for r in caplog.records if "falls back to in-process caching" in r.getMessage()]
    assert len(warnings) == 1
    assert len(token_calls(mocked)) == 2


def test_failed_cache_is_left_alone_for_a_while(
    token_endpoint: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token_endpoint(token_body("t"))
    manager = get_token_manager()
    tries: list[str] = []

    def failing_get(*args: Any, **kwargs: Any) -> Any:
        tries.append("get")
        raise ZeroDivisionError

    monkeypatch.setattr(test_caches.BrokenCache, "get", failing_get)
    with override_settings(CACHES={"default": {"BACKEND": "tests.caches.BrokenCache"}}):
        for _ in range(50):
            manager.peek()
        assert tries == ["get"]  # once, then not again within CACHE_RETRY_INTERVAL
        monkeypatch.setattr("keycloak_jwt_auth.tokens.store.CACHE_RETRY_INTERVAL", 0.0)
        manager.store._retry_at = 0.0
        manager.peek()
        assert tries == ["get", "get"]
    with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
        manager.peek()  # the real cache answers again
    assert any("works again" in r.getMessage() for r in caplog.records)


def test_logs_never_hold_secret_assertion_or_token(
    mocked: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mocked.post(TOKEN_URL, json={"error": "x"}, status=503)
    mocked.post(TOKEN_URL, json=token_body("the-access-token-value"))
    with caplog.at_level(logging.DEBUG):
        get_access_token()
        get_token_manager().invalidate()
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "Fetched a token for client django-service" in text
    assert "retry 1 of 2" in text
    assert "the-access-token-value" not in text
    assert settings.TEST_SECRET not in text
    assert "eyJ" not in text  # no JWT (assertion) of any kind


def test_manager_repr_has_no_secret() -> None:
    assert settings.TEST_SECRET not in repr(get_token_manager())
    assert "token-1" not in repr(AccessToken(value="token-1", expires_at=0))


def test_renewal_takes_a_token_stored_while_it_took_the_lock(
    token_endpoint: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked = token_endpoint(token_body("old"), token_body("unwanted"))
    get_access_token()
    manager = get_token_manager()
    clock.now += 290  # inside the margin: this caller will try to renew
    theirs = AccessToken(value="theirs", expires_at=clock.now + 300)
    take_lock = manager.store.try_lock

    def other_worker_finishes_first() -> str | None:
        # Between our look and our lock, another worker stored its token and released the lock.
        caches["default"].set(manager.store.key, theirs.to_json(), 300)
        return take_lock()

    monkeypatch.setattr(manager.store, "try_lock", other_worker_finishes_first)
    assert get_access_token() == "old"
    wait_for_renewal()
    assert get_access_token() == "theirs"
    assert len(token_calls(mocked)) == 1
    assert caches["default"].get(manager.store.lock_key) is None  # ours, released at once


def test_a_stuck_leader_does_not_hang_its_followers(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked, release = threading.Event(), threading.Event()
    answers = iter(["leader", "follower"])

    def token_request(request: Any) -> tuple[int, dict[str, str], str]:
        value = next(answers)
        if value == "leader":
            asked.set()
            release.wait(10)  # the leader's request hangs
        return 200, {}, json.dumps(token_body(value))

    mocked.add_callback(responses.POST, TOKEN_URL, callback=token_request)
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "LOCK_TIMEOUT": 1}):
        manager = get_token_manager()
        monkeypatch.setattr(manager, "_longest_fetch", lambda: 0.0)
        leader = threading.Thread(target=get_access_token)
        leader.start()
        assert asked.wait(5)
        started = time.monotonic()
        assert get_access_token() == "follower"
        waited = time.monotonic() - started
        release.set()
        leader.join(5)
    assert 0.9 < waited < 3  # LOCK_TIMEOUT, then it fetched for itself
    assert len(token_calls(mocked)) == 2


def test_a_live_lock_holder_is_waited_for_at_most_lock_timeout_and_one_fetch(
    token_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    mocked = token_endpoint(token_body("mine"))
    fast = {**BASE, "LOCK_TIMEOUT": 1, "TIMEOUT": 0.2, "RETRIES": 0}  # one fetch: 0.4 s at most
    with override_settings(KEYCLOAK_JWT_AUTH=fast):
        manager = get_token_manager()
        caches["default"].add(
            manager.store.lock_key, held_lock("slow-process"), 30
        )  # held, never stored
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
            assert get_access_token() == "mine"
    assert 1.3 < time.monotonic() - started < 3
    assert any("Waited 1s for another worker's token" in r.getMessage() for r in caplog.records)
    assert len(token_calls(mocked)) == 1


def run_in_fork(check: Any) -> str:
    """Run ``check()`` in a forked child; its string result (or the error) comes back."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (the child's coverage is not collected)
        try:
            result = str(check())
        except BaseException as exc:
            result = f"{type(exc).__name__}: {exc}"
        os.write(write, result.encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        result = pipe.read()
    os.waitpid(pid, 0)
    return result


def test_a_fork_during_a_renewal_leaves_the_child_a_clean_state(
    mocked: responses.RequestsMock,
) -> None:
    release, parent = threading.Event(), os.getpid()

    def slow_renewal(request: Any) -> tuple[int, dict[str, str], str]:
        if os.getpid() == parent:
            release.wait(5)  # the parent's renewal hangs; the child's own request does not
        return 200, {}, json.dumps(token_body("renewed"))

    mocked.add_callback(responses.POST, TOKEN_URL, callback=slow_renewal)
    manager = get_token_manager()
    with manager._lock:  # a thread of the parent holds the lock at the moment of the fork
        manager._flight = Flight()  # and a fetch is in flight
        parent_session = manager.session

        def child() -> str:
            assert manager._flight is None
            assert manager.session is not parent_session  # no shared keep-alive socket
            started = time.monotonic()
            assert get_access_token() == "renewed"  # a cold call does not wait for a ghost
            return f"ok {time.monotonic() - started:.1f}"

        try:
            result = run_in_fork(child)
        finally:
            release.set()
    assert result.startswith("ok "), result
    assert float(result.split()[1]) < 2


def test_a_renewal_thread_that_cannot_start_does_not_wedge_renewal(
    token_endpoint: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked = token_endpoint(token_body("old"), token_body("new"))
    get_access_token()

    def cannot_start(self: threading.Thread) -> None:
        raise RuntimeError("can't start new thread")

    monkeypatch.setattr(threading.Thread, "start", cannot_start)
    clock.now += 290
    assert get_access_token() == "old"  # renewed inline instead
    assert len(token_calls(mocked)) == 2
    clock.now += 1
    assert get_access_token() == "new"
    assert get_token_manager()._flight is None


def test_a_bug_in_a_renewal_is_logged_with_its_traceback(
    token_endpoint: Any, clock: Clock, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    token_endpoint(token_body("old"))
    get_access_token()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("keycloak_jwt_auth.tokens.manager.run_flow", broken)
    clock.now += 290
    with caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"):
        assert get_access_token() == "old"
        wait_for_renewal()
    [record] = [r for r in caplog.records if "Token request for client" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is ZeroDivisionError


def test_the_default_lock_outlives_one_slow_request() -> None:
    config = get_token_manager().config
    assert config.timeout == (5.0, 10.0)
    assert config.lock_timeout == 5.0 + 10.0 + 5.0


def test_the_lock_holder_extends_its_lock_before_each_retry(
    mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.post(TOKEN_URL, json={"error": "unknown_error"}, status=503)
    mocked.post(TOKEN_URL, json={"error": "unknown_error"}, status=503)
    mocked.post(TOKEN_URL, json=token_body("third"))
    touched: list[tuple[str, Any]] = []
    store = get_token_manager().store
    original = type(caches["default"]).touch

    def recording_touch(cache: Any, key: str, timeout: Any = None, version: Any = None) -> bool:
        touched.append((key, timeout))
        return bool(original(cache, key, timeout, version))

    monkeypatch.setattr(type(caches["default"]), "touch", recording_touch)
    assert get_access_token() == "third"
    assert touched == [(store.lock_key, store.lock_timeout)] * 2  # before retries 1 and 2
