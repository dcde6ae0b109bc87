"""The deployment test bed's own logic: the demo's cache URLs (every Redis backend with socket
timeouts), the shared-cache tests' backend, and how the fault run judges calls against the
promise (the run itself is scripts/soak.sh, in the test command)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.soak.faults import Window
from benchmarks.soak.load import Call, task_calls
from benchmarks.soak.report import SLOW, assess, keycloak_returns
from demo_project.caches import cache_from_url
from support.shared_cache import cache_settings

LIFETIME = 12.0


def test_django_redis_urls_get_its_socket_timeouts() -> None:
    cache = cache_from_url("django-redis://127.0.0.1:6390/0")
    assert cache["BACKEND"] == "django_redis.cache.RedisCache"
    assert cache["LOCATION"] == "redis://127.0.0.1:6390/0"
    assert cache["OPTIONS"] == {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 1.0}


def test_redis_urls_stay_djangos_own_backend_beside_django_redis() -> None:
    # django-environ alone would pick django-redis for redis:// now that it is installed.
    for cache in (cache_from_url("redis://127.0.0.1:6390/0"), cache_settings("redis://h:1/0")):
        if "CACHES" in cache:
            cache = cache["CACHES"]["default"]
        assert cache["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
        assert cache["OPTIONS"] == {"socket_connect_timeout": 1, "socket_timeout": 1}


def test_other_cache_urls_are_django_environs() -> None:
    assert cache_from_url("locmemcache://")["BACKEND"].endswith("LocMemCache")


def call(
    kind: str, start: float, seconds: float = 0.1, ok: bool = True, detail: str = "200"
) -> Call:
    return Call(kind, start, seconds, ok, detail)


KEYCLOAK_RESTART = Window("restart Keycloak", 30.0, 60.0, allowance=1, keycloak_down=True)
WORKER_KILLED = Window("kill a gunicorn worker", 10.0, 10.0, allowance=0, cuts="wsgi")
TOKENS = [0.5, 8.5, 16.5, 24.5, 61.0]  # none renewed during the outage


def broken(*calls: Call) -> list[str]:
    _, overall = assess(calls, TOKENS, [WORKER_KILLED, KEYCLOAK_RESTART], 0.0, 80.0, LIFETIME)
    return overall.broken


def test_a_failure_while_a_valid_token_exists_breaks_the_promise() -> None:
    assert broken(call("wsgi token", 20.0, ok=False, detail="503")) == [
        "wsgi token at +20.0 s failed (503) while a valid token existed"
    ]


@pytest.mark.parametrize(
    "failed",
    [
        call("wsgi token", 40.0, ok=False, detail="503"),  # the last token expired at 36.5
        call("task", 31.0, ok=False, detail="KeycloakUnavailableError"),  # Keycloak was down
        call("wsgi users", 9.9, ok=False, detail="ConnectionError"),  # its worker was killed
    ],
)
def test_justified_failures(failed: Call) -> None:
    assert broken(failed) == []


def test_a_cold_caller_may_not_wait_out_a_back_off_but_may_wait_for_keycloak() -> None:
    waited_out_back_off = call("wsgi token", 37.0, seconds=20.0, ok=False, detail="503")
    waited_for_keycloak = call("wsgi users", 55.0, seconds=SLOW + 4)  # Keycloak was back at 60
    waited_after_it_was_back = call("asgi users", 55.0, seconds=SLOW + 6)  # its token: at 61
    assert broken(waited_out_back_off, waited_for_keycloak, waited_after_it_was_back) == [
        "wsgi token at +37.0 s took 20.0 s",
        "asgi users at +55.0 s took 11.0 s",
    ]


def test_token_requests_are_counted_per_phase_against_one_per_renewal_period() -> None:
    parts, overall = assess([call("wsgi token", 1.0)], TOKENS, [KEYCLOAK_RESTART], 0, 80, LIFETIME)
    steady, restart = parts
    assert (steady.token_requests, restart.token_requests) == (4, 1)
    assert steady.ideal == 30 // 8 + 1  # 0 to 30 s: renewals every 8 s (two thirds of 12)
    assert restart.ideal == 50 // 8 + 1 + 1  # 30 s to the end (80 s), and its allowance
    assert overall.ideal == 1 + 80 // 8 + 1
    assert overall.token_requests == 5


def test_task_outcomes_come_from_the_celery_workers_log(tmp_path: Path) -> None:
    log = tmp_path / "celery.log"
    log.write_text(
        "[2026-12-04 22:21:00,141: INFO/ForkPoolWorker-3] Task demo_project.tasks.count_users"
        "[a1] succeeded in 0.5s: 30\n"
        "[2026-12-04 22:21:01,000: ERROR/ForkPoolWorker-1] Task demo_project.tasks.count_users"
        "[b2] raised unexpected: KeycloakUnavailableError('down')\n"
        "[2026-12-04 22:21:02,000: INFO/MainProcess] something else\n"
    )
    calls = task_calls(log, since=0)
    assert [(c.ok, c.seconds, c.detail) for c in calls] == [
        (True, 0.5, "ok"),
        (False, 0.0, "KeycloakUnavailableError"),
    ]


def test_sentinel_urls_name_the_primary_and_the_sentinels() -> None:
    url = "django-redis-sentinel://deploy/1?sentinels=127.0.0.1:26390,10.0.0.2:26391"
    cache = cache_from_url(url)
    assert cache["LOCATION"] == "redis://deploy/1"
    options = cache["OPTIONS"]
    assert options["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
    assert options["SENTINELS"] == [("127.0.0.1", 26390), ("10.0.0.2", 26391)]
    assert options["SOCKET_TIMEOUT"] == options["SENTINEL_KWARGS"]["socket_timeout"] == 1.0


def test_each_keycloak_restart_says_how_long_the_first_token_took_once_it_was_back() -> None:
    assert keycloak_returns([WORKER_KILLED, KEYCLOAK_RESTART], TOKENS) == (
        "down 30.0 s, first token 1.0 s later"
    )
