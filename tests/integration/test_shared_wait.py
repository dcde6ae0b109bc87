"""On a real Redis (Django's ``RedisCache``): a failed renewal's back-off never makes another
worker's caller without a token wait, and a cold waiter costs Redis a few commands per fetch.
Each "worker" is a ``TokenManager`` with its own memory; the token endpoint is mocked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth import get_token_manager
from keycloak_jwt_auth.tokens.manager import TokenManager
from keycloak_jwt_auth.tokens.token import AccessToken
from tests.conftest import TOKEN_URL, token_body, token_calls

from .conftest import ROOT

pytestmark = [pytest.mark.redis]

BASE = settings.KEYCLOAK_JWT_AUTH
OURS = ("get", "mget", "set", "del", "expire")  # what RedisCache sends for the token store


@pytest.fixture
def on_redis(redis_server: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    cache = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": redis_server}
    with override_settings(CACHES={"default": cache}):
        yield client


def workers(count: int, **overrides: Any) -> list[TokenManager]:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **overrides}):
        config = get_token_manager().config
    return [TokenManager(config) for _ in range(count)]


def commands(client: redis.Redis) -> int:
    stats: dict[str, Any] = client.info("commandstats")
    return sum(int(v["calls"]) for k, v in stats.items() if k.removeprefix("cmdstat_") in OURS)


def test_a_failed_renewal_does_not_stall_another_worker_after_expiry(
    on_redis: redis.Redis, mocked: responses.RequestsMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])  # the app's clock; Redis keeps its own
    mocked.post(TOKEN_URL, json=token_body("old", expires_in=300))
    mocked.post(TOKEN_URL, json={"error": "unknown_error"}, status=503)
    mocked.post(TOKEN_URL, json=token_body("new"))
    renewer, other = workers(2, LOCK_TIMEOUT=5, BACKGROUND_REFRESH=False, RETRIES=0)
    assert renewer.get_token().value == other.get_token().value == "old"
    now[0] += 297
    assert renewer.get_token().value == "old"  # its renewal fails: a 5 s back-off starts
    now[0] += 2.5  # expired everywhere; Keycloak answers again
    started = time.monotonic()
    assert other.get_token().value == "new"
    assert time.monotonic() - started < 1  # before: the back-off's 5 s
    assert len(token_calls(mocked)) == 3


def test_a_cold_waiter_costs_redis_a_few_commands(
    on_redis: redis.Redis, mocked: responses.RequestsMock
) -> None:
    holder, waiter = workers(2)
    owner = holder.store.try_lock()

    def store_later() -> None:
        time.sleep(1.0)
        holder.store.write(AccessToken(value="theirs", expires_at=time.time() + 300))
        holder.store.release(owner)

    before = commands(on_redis)
    thread = threading.Thread(target=store_later)
    thread.start()
    assert waiter.get_token().value == "theirs"
    thread.join()
    # The holder: add, set, get, del. The waiter: a read and 11 looks (before: 60 commands).
    assert commands(on_redis) - before <= 4 + 13


def test_the_cache_traffic_benchmark_runs(redis_server: str, tmp_path: Path) -> None:
    """A smoke run of benchmarks/cache_traffic.py (two processes, 6 s tokens, about 15 s): it
    counts and reports."""
    out = tmp_path / "traffic.json"
    command = [sys.executable, "-m", "benchmarks.cache_traffic", f"--redis-url={redis_server}"]
    command += ["--processes", "2", "--duration=3", "--lifetime=6", "--delay=0.3", f"--out={out}"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    [row] = json.loads(out.read_text())
    assert row["errors"] == 0 and row["calls"] > 0
    assert row["token_requests"] == row["ideal_token_requests"] == 2  # two cold starts
    assert 0 < row["cold_commands_per_process"] < 30
    assert 0 < row["again_commands_per_process"] < 30
