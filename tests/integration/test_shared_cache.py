"""One token per lifetime for a whole deployment: worker processes sharing a real cache (Redis,
memcached, Django's DatabaseCache on PostgreSQL), token requests counted at the real Keycloak
(its CLIENT_LOGIN events)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import pytest
import redis

from support.keycloak_events import token_events
from support.shared_cache import SharedCache
from support.worker import start_worker

from .conftest import CACHE_TABLE, ROOT, SHARED_CACHES, run_script, wait_for_lock_waiters

pytestmark = [pytest.mark.keycloak]

CLIENT = "django-short-lived"
LIFETIME = 10.0
RENEWAL_PERIOD = LIFETIME * 2 / 3  # renewal starts a third of the lifetime before expiry


@pytest.fixture
def shared(real_keycloak: str, redis_server: str) -> Iterator[str]:
    redis.Redis.from_url(redis_server).flushdb()
    yield redis_server


def start_app_worker(
    out: Path,
    cache_url: str,
    *,
    threads: int,
    start_at: float,
    until: float,
    app_settings: dict[str, Any] | None = None,
    database_url: str = "",
) -> subprocess.Popen[bytes]:
    return start_worker(
        "app",
        "loop",
        out,
        client=CLIENT,
        cache_url=cache_url,
        database_url=database_url,
        app_settings=app_settings,
        threads=threads,
        start_at=start_at,
        until=until,
        interval=0.02,
    )


def finish(workers: list[subprocess.Popen[bytes]], outs: list[Path]) -> list[dict[str, Any]]:
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    return [json.loads(out.read_text()) for out in outs]


def assert_clean(reports: list[dict[str, Any]]) -> None:
    for report in reports:
        assert report["errors"] == 0, report["error_samples"]
        assert report["expired_served"] == 0
        assert report["calls"] > 0


@pytest.mark.parametrize("shared_cache", SHARED_CACHES, indirect=True)
def test_4_processes_x_8_threads_fetch_one_token_per_lifetime(
    real_keycloak: str, shared_cache: SharedCache, tmp_path: Path
) -> None:
    duration = 24.0  # renewals at about 6.7, 13.3 and 20 s: 4 tokens, far from any boundary
    since = time.time()
    start_at = since + 3.0
    outs = [tmp_path / f"{i}.json" for i in range(4)]
    workers = [
        start_app_worker(
            out,
            shared_cache.cache_url,
            database_url=shared_cache.database_url,
            threads=8,
            start_at=start_at,
            until=start_at + duration,
        )
        for out in outs
    ]
    assert_one_token_per_lifetime(finish(workers, outs), since, duration)


def assert_one_token_per_lifetime(
    reports: list[dict[str, Any]], since: float, duration: float
) -> None:
    """Counted at Keycloak: one token request per renewal period, each token used."""
    events = token_events(CLIENT, since, time.time())
    assert_clean(reports)
    expected = 1 + int(duration // RENEWAL_PERIOD)
    assert len(events) == expected, [e["time"] for e in events]
    issued = {e["details"]["token_id"] for e in events}
    served = {jti for r in reports for jti in r["tokens"]}
    assert served == issued  # every token Keycloak issued was used, by every process
    assert sum(r["app_fetches"] for r in reports) == expected


class Blackhole(BaseHTTPRequestHandler):
    """A token endpoint that never answers: the request hangs as the lock holder dies."""

    def do_POST(self) -> None:
        time.sleep(30)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_blackhole() -> ThreadingHTTPServer:
    hole = ThreadingHTTPServer(("127.0.0.1", 0), Blackhole)
    hole.daemon_threads = True
    threading.Thread(target=hole.serve_forever, daemon=True).start()
    return hole


@pytest.mark.redis
def test_lock_holder_killed_mid_renewal(shared: str, tmp_path: Path) -> None:
    lock_timeout = 3
    hole = start_blackhole()
    store = redis.Redis.from_url(shared)
    try:
        victim = start_app_worker(
            tmp_path / "victim.json",
            shared,
            threads=1,
            start_at=0,
            until=time.time() + 60,
            app_settings={
                "LOCK_TIMEOUT": lock_timeout,
                "RETRIES": 0,
                "TIMEOUT": 30,
                "TOKEN_ENDPOINT": f"http://127.0.0.1:{hole.server_address[1]}/token",
            },
        )
        deadline = time.time() + 20
        while not store.keys("*:lock") and time.time() < deadline:
            time.sleep(0.05)
        assert store.keys("*:lock"), "the victim never took the renewal lock"
        victim.send_signal(signal.SIGKILL)  # dies holding the lock, mid-request
        victim.wait(10)

        since = time.time()
        outs = [tmp_path / f"{i}.json" for i in range(3)]
        workers = [
            start_app_worker(
                out,
                shared,
                threads=4,
                start_at=since + 2,
                until=since + 7,
                app_settings={"LOCK_TIMEOUT": lock_timeout},
            )
            for out in outs
        ]
        reports = finish(workers, outs)
        events = token_events(CLIENT, since, time.time())
    finally:
        hole.shutdown()

    assert_clean(reports)
    # Nobody hung: the first calls waited at most for the dead lock to time out.
    assert max(max(r["latencies_ns"]) for r in reports) < (lock_timeout + 2) * 1e9
    assert len(events) == 1  # the survivors still fetched once between them
    assert len({jti for r in reports for jti in r["tokens"]}) == 1


@pytest.mark.redis
def test_redis_stopped_mid_run_then_restarted(shared: str, tmp_path: Path) -> None:
    since = time.time()
    start_at, until = since + 3, since + 3 + 40
    outs = [tmp_path / f"{i}.json" for i in range(3)]
    workers = [
        start_app_worker(out, shared, threads=4, start_at=start_at, until=until) for out in outs
    ]
    try:
        time.sleep(start_at + 6 - time.time())
        run_script("redis.sh", "stop")
        time.sleep(14)  # two renewals without Redis
        run_script("redis.sh", "start")
        restarted = time.time()
    finally:
        if subprocess.run([str(ROOT / "scripts" / "redis.sh"), "status"]).returncode != 0:
            run_script("redis.sh", "start")
    reports = finish(workers, outs)
    events = token_events(CLIENT, since, time.time())

    assert_clean(reports)  # no call failed, no expired token, while Redis was away
    for report in reports:
        assert report["cache_fallbacks"] == 1  # logged once per process
        assert report["cache_recoveries"] == 1
    after = [e for e in events if e["time"] >= (restarted + 1) * 1000]
    # Shared again: one renewal per period for all three processes, not one each.
    assert len(after) <= 1 + int((until - restarted) // RENEWAL_PERIOD)
    during = [e for e in events if (start_at + 6) * 1000 <= e["time"] < restarted * 1000]
    assert len(during) >= 3  # without Redis each process renewed on its own


@pytest.mark.postgres
def test_database_cache_lock_left_to_expire_costs_one_fetch_as_a_look_deletes_it_first(
    real_keycloak: str, database_cache: SharedCache, tmp_path: Path
) -> None:
    """A lock left to time out (its holder killed) stays as an expired row, and Django's ``add``
    over it lets every process that read it win (tests/integration/test_cache_add.py: W009).
    Each worker looks before it takes the lock, in one ``get_many`` that deletes expired rows:
    so ``add`` is an INSERT, which one process wins. Here the processes line up on
    PostgreSQL's row lock (in that delete); once it is released, one of them fetches for all
    (before waiting looked that way, 3 or 4 of them fetched)."""
    database_cache.clear()
    processes = 4
    hole = start_blackhole()
    lock_rows = f"SELECT cache_key FROM {CACHE_TABLE} WHERE cache_key LIKE %s"
    try:
        with psycopg.connect(database_cache.database_url, autocommit=True) as watch:
            victim = start_app_worker(
                tmp_path / "victim.json",
                database_cache.cache_url,
                database_url=database_cache.database_url,
                threads=1,
                start_at=0,
                until=time.time() + 60,
                app_settings={
                    "LOCK_TIMEOUT": 1,
                    "RETRIES": 0,
                    "TIMEOUT": 30,
                    "TOKEN_ENDPOINT": f"http://127.0.0.1:{hole.server_address[1]}/token",
                },
            )
            deadline = time.time() + 20
            while not watch.execute(lock_rows, ["%:lock"]).fetchall() and time.time() < deadline:
                time.sleep(0.05)
            [(lock_key,)] = watch.execute(lock_rows, ["%:lock"]).fetchall()
            victim.send_signal(signal.SIGKILL)  # dies holding the lock, mid-request
            victim.wait(10)
            time.sleep(2.5)  # the lock expires, its row stays

            with psycopg.connect(database_cache.database_url) as holder:
                expired_lock = holder.execute(
                    f"SELECT 1 FROM {CACHE_TABLE} WHERE cache_key = %s AND expires < now()"
                    " FOR UPDATE",
                    [lock_key],
                ).fetchone()
                assert expired_lock is not None  # what the killed holder left, held for now
                outs = [tmp_path / f"{i}.json" for i in range(processes)]
                workers = [
                    start_app_worker(
                        out,
                        database_cache.cache_url,
                        database_url=database_cache.database_url,
                        threads=2,
                        start_at=0,
                        until=time.time() + 12,
                    )
                    for out in outs
                ]
                wait_for_lock_waiters(watch, processes)  # each process is inside add
                released = time.time()
            # Leaving the block commits: the row lock is gone, the row still expired.
            reports = finish(workers, outs)
            events = token_events(CLIENT, released, released + 5)  # before any renewal
    finally:
        hole.shutdown()

    assert_clean(reports)
    fetched = sum(r["app_fetches"] for r in reports)
    first_tokens = {e["details"]["token_id"] for e in events}
    assert len(events) == 1, "several fetched: add ran over the expired row"
    assert fetched >= len(events)
    assert first_tokens <= {jti for r in reports for jti in r["tokens"]}


@pytest.mark.redis
def test_4_processes_x_4_threads_and_500_tasks_fetch_one_token_per_lifetime(
    shared: str, tmp_path: Path
) -> None:
    """Async callers join the same single flight as threads and other processes."""
    duration = 24.0
    since = time.time()
    start_at = since + 3.0
    outs = [tmp_path / f"{i}.json" for i in range(4)]
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "support.mixed_worker",
                f"--client={CLIENT}",
                f"--cache-url={shared}",
                "--threads=4",
                "--tasks=500",
                f"--start-at={start_at}",
                f"--until={start_at + duration}",
                "--interval=0.05",
                f"--out={out}",
            ],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        for out in outs
    ]
    assert_one_token_per_lifetime(finish(workers, outs), since, duration)
