"""Who waits for whom across processes, and what waiting costs the shared cache.

Each "process" is a ``TokenManager`` with its own memory on one shared cache (Django's locmem
cache, or a file-based one: several managers reading and writing the same files)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import responses
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from keycloak_jwt_auth import get_token_manager
from keycloak_jwt_auth.tokens.manager import TokenManager
from keycloak_jwt_auth.tokens.token import AccessToken

from . import caches as test_caches
from .conftest import TOKEN_URL, token_body, token_calls

BASE = settings.KEYCLOAK_JWT_AUTH


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The app's wall clock, moved by hand: ``clock[0] += seconds``."""
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    return now


@pytest.fixture(params=["locmem", "file"])
def shared_cache(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    backends = {
        "locmem": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "file": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path / "cache"),
        },
    }
    with override_settings(CACHES={"default": backends[request.param]}):
        yield request.param


def processes(count: int, **overrides: Any) -> list[TokenManager]:
    """``count`` workers of one deployment: each has its own memory, all share the cache."""
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **overrides}):
        config = get_token_manager().config
    return [TokenManager(config) for _ in range(count)]


def answers(mocked: responses.RequestsMock, *replies: tuple[int, dict[str, Any]]) -> None:
    """The token endpoint's replies, in order (the last one again after that)."""
    queue = list(replies)

    def reply(request: Any) -> tuple[int, dict[str, str], str]:
        status, body = queue.pop(0) if len(queue) > 1 else queue[0]
        return status, {}, json.dumps(body)

    mocked.add_callback(responses.POST, TOKEN_URL, callback=reply)


DOWN = (503, {"error": "unknown_error"})
RENEW_INLINE = {"BACKGROUND_REFRESH": False, "RETRIES": 0, "TIMEOUT": 0.5}


def test_a_failed_renewal_does_not_make_another_process_wait_once_the_token_expired(
    mocked: responses.RequestsMock, clock: list[float], shared_cache: str
) -> None:
    """Issue 23: the worker whose renewal failed kept the lock as its back-off; after expiry,
    other workers' callers waited for that lock (14.7 s after Keycloak was back)."""
    answers(mocked, (200, token_body("old", expires_in=300)), DOWN, (200, token_body("new")))
    renewer, other = processes(2, LOCK_TIMEOUT=2, **RENEW_INLINE)
    assert renewer.get_token().value == other.get_token().value == "old"
    clock[0] += 298  # inside the margin: the renewal fails, the back-off starts (2 s)
    assert renewer.get_token().value == "old"
    assert len(token_calls(mocked)) == 2
    clock[0] += 1.5  # expired for every worker, the back-off runs on; Keycloak is back
    started = time.monotonic()
    assert other.get_token().value == "new"
    assert time.monotonic() - started < 1  # one request, no wait for the back-off
    assert renewer.get_token().value == "new"
    assert len(token_calls(mocked)) == 3


def test_a_back_off_holds_renewals_back_in_every_process_until_it_ends(
    mocked: responses.RequestsMock, clock: list[float], shared_cache: str
) -> None:
    answers(mocked, (200, token_body("old", expires_in=300)), DOWN, (200, token_body("new")))
    renewer, *others = processes(3, LOCK_TIMEOUT=10, **RENEW_INLINE)
    assert renewer.get_token().value == "old"
    clock[0] += 275
    assert renewer.get_token().value == "old"  # its renewal fails: back-off until 285
    for _ in range(30):
        clock[0] += 0.3
        assert all(worker.get_token().value == "old" for worker in (renewer, *others))
    assert len(token_calls(mocked)) == 2  # nobody asked the down Keycloak meanwhile
    clock[0] += 1.5  # the back-off is over: one worker renews (inline, serving the valid
    # token), the next takes the new one
    assert [str(worker.get_token().value) for worker in others] == ["old", "new"]
    clock[0] += 2.5
    assert all(worker.get_token().value == "new" for worker in (renewer, *others))
    assert len(token_calls(mocked)) == 3


def test_cold_callers_of_several_processes_share_one_fetch_during_a_back_off(
    mocked: responses.RequestsMock, clock: list[float]
) -> None:
    # On locmem, whose add is atomic (FileBasedCache's is not: check W007).
    answers(mocked, (200, token_body("old", expires_in=300)), DOWN)
    renewer, *cold = processes(4, LOCK_TIMEOUT=5, **RENEW_INLINE)
    renewer.get_token()
    clock[0] += 297
    renewer.get_token()  # fails: back-off until 302
    clock[0] += 2.5  # expired everywhere
    mocked.remove(responses.POST, TOKEN_URL)

    def slow_token(request: Any) -> tuple[int, dict[str, str], str]:
        time.sleep(0.3)
        return 200, {}, json.dumps(token_body("new"))

    mocked.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
    served: list[str] = []
    threads = [
        threading.Thread(target=lambda w=worker: served.append(w.get_token().value))
        for worker in cold
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert served == ["new"] * 3
    assert len(token_calls(mocked)) == 2 + 1  # the first, the failed renewal, one cold fetch


@pytest.fixture
def counted() -> Iterator[list[tuple[int, str]]]:
    test_caches.requests_made.clear()
    with override_settings(CACHES={"default": {"BACKEND": "tests.caches.CountingCache"}}):
        yield test_caches.requests_made


def stores_later(holder: TokenManager, seconds: float, token: AccessToken) -> threading.Thread:
    """Another worker holds the lock, fetches for ``seconds``, stores ``token``, releases."""
    owner = holder.store.try_lock()
    assert owner is not None

    def finish() -> None:
        time.sleep(seconds)
        holder.store.write(token)
        holder.store.release(owner)

    thread = threading.Thread(target=finish)
    thread.start()
    return thread


def mine(requests: list[tuple[int, str]], ident: Callable[[], int] = threading.get_ident) -> int:
    me = ident()
    return sum(1 for thread, _ in requests if thread == me)


def test_a_cold_waiter_looks_a_few_times_per_fetch_and_is_served_soon_after_it(
    mocked: responses.RequestsMock, counted: list[tuple[int, str]]
) -> None:
    holder, waiter = processes(2)
    token = AccessToken(value="theirs", expires_at=time.time() + 300)
    other = stores_later(holder, 1.0, token)
    started = time.monotonic()
    assert waiter.get_token().value == "theirs"
    waited = time.monotonic() - started
    other.join()
    # A read, then looks at 0, 0.05, 0.11, 0.17, 0.25, 0.34, 0.44, 0.55, 0.69, 0.84 and 1.02 s
    # (a 50 ms poll: 20 looks of three requests each), served within one pause of the store.
    assert mine(counted) <= 13, counted
    assert 1.0 <= waited < 1.0 + 0.35
    # It learnt how long a fetch takes, at least (at its last look, the fetch had run 0.84 s):
    # its own lock will say when it expects to be done.
    took = waiter.store.fetch_seconds
    assert took is not None and 0.6 < took <= 1.0
    assert waiter.store.try_lock() is not None
    assert waiter.store.look(time.time()).expected_at == pytest.approx(time.time() + took, abs=0.1)
    assert len(token_calls(mocked)) == 0


def test_a_worker_waiting_for_another_s_renewal_looks_a_few_times(
    mocked: responses.RequestsMock, counted: list[tuple[int, str]]
) -> None:
    holder, worker = processes(2)
    now = time.time()
    due = AccessToken(value="old", expires_at=now + 9, issued_at=now - 20)  # renewal is due
    holder.store.write(due)
    other = stores_later(holder, 1.5, AccessToken(value="new", expires_at=now + 300))
    served: list[str] = []
    callers: set[int] = set()

    def call_for(seconds: float) -> None:
        callers.add(threading.get_ident())
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            served.append(worker.get_token().value)
            time.sleep(0.01)

    threads = [threading.Thread(target=call_for, args=(2.2,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    other.join()
    # Looks at 0, 0.25, 0.75 and 1.75 s (at 0.25 s intervals: 9 looks of three requests).
    looks = [op for thread, op in counted if thread in callers]
    assert len(looks) <= 6, looks
    assert served[0] == "old" and served[-1] == "new"
    assert len(token_calls(mocked)) == 0


def test_a_holder_that_fetched_before_says_when_it_expects_to_be_done(
    mocked: responses.RequestsMock, counted: list[tuple[int, str]]
) -> None:
    holder, waiter = processes(2)
    holder.store.fetch_seconds = 1.0  # its last fetch took 1 s: so will this one, it expects
    other = stores_later(holder, 1.0, AccessToken(value="theirs", expires_at=time.time() + 300))
    started = time.monotonic()
    assert waiter.get_token().value == "theirs"
    waited = time.monotonic() - started
    other.join()
    assert mine(counted) <= 5, counted  # a read, a look, a sleep until 1 s, a look or two
    assert 1.0 <= waited < 1.0 + 0.15


def test_renewals_wait_for_a_failed_cache_while_the_token_lasts(
    mocked: responses.RequestsMock, clock: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23: during a Redis outage (or failover) every process whose cache failed renewed
    on its own; now renewals wait for the cache to be tried again, so one worker renews for
    all of them (the token lasts long past that)."""
    monkeypatch.setattr("keycloak_jwt_auth.tokens.store.CACHE_RETRY_INTERVAL", 0.2)
    monkeypatch.setattr(test_caches.SwitchableCache, "down", False)
    answers(mocked, (200, token_body("old", expires_in=300)), (200, token_body("new")))
    backend = {"BACKEND": "tests.caches.SwitchableCache"}
    with override_settings(CACHES={"default": backend}):
        workers = processes(3, **RENEW_INLINE)
        assert {worker.get_token().value for worker in workers} == {"old"}
        test_caches.SwitchableCache.down = True
        clock[0] += 275  # renewal due everywhere; the cache fails
        assert {worker.get_token().value for worker in workers} == {"old"}
        assert len(token_calls(mocked)) == 1  # nobody renewed alone
        test_caches.SwitchableCache.down = False
        time.sleep(0.3)  # the failed cache is tried again
        clock[0] += 3  # past every worker's next look
        # The first renews (inline, serving its valid token meanwhile); the others take the new.
        assert [str(worker.get_token().value) for worker in workers] == ["old", "new", "new"]
        assert len(token_calls(mocked)) == 2  # one renewal for the three


@pytest.mark.parametrize("planted", ["9" * 12, "not a time", 12345, ["x"]])
def test_a_planted_back_off_holds_no_renewal_back(
    mocked: responses.RequestsMock, clock: list[float], planted: Any
) -> None:
    """A back-off value no live worker wrote (far ahead, not a time, not text) is ignored: at
    most ``LOCK_TIMEOUT`` ahead is believed, so a poisoned cache cannot stop renewals."""
    answers(mocked, (200, token_body("old", expires_in=300)), (200, token_body("new")))
    [worker] = processes(1, **RENEW_INLINE)
    assert worker.get_token().value == "old"
    caches["default"].set(worker.store.backoff_key, planted, None)  # forever
    clock[0] += 280  # renewal due
    worker.get_token()  # renews inline
    assert worker.get_token().value == "new"
    assert len(token_calls(mocked)) == 2
