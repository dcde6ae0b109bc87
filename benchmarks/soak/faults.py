"""The faults, each done to the real services through the project's scripts and PID files, and
the window it covers (from the first blow until the service answers again)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
REDIS_PAUSE = 3.0  # longer than the demo's 1 s socket timeouts (demo_project/caches.py)
RENEWAL_DUE = 12.0 * 2 / 3  # seconds from one renewal to the next with django-deploy's tokens


@dataclass(frozen=True)
class Window:
    """A fault: ``start`` when it began, ``end`` when the service answered again (epoch s)."""

    name: str
    start: float
    end: float
    allowance: int  # token requests the fault may cost beyond one per renewal period
    keycloak_down: bool = False  # calls that need Keycloak itself may fail inside it
    cuts: str = ""  # the calls (by kind prefix) whose connection the fault may cut: "wsgi"


def pid_of(state: str) -> int:
    return int((ROOT / state).read_text())


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "--ppid", str(pid), "-o", "pid="], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def script(name: str, action: str, **env: str) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / name), action],
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=600,
    )


def kill_gunicorn_worker(processes: int) -> Window:
    """SIGKILL one sync worker: gunicorn forks a new one from the preloaded master."""
    start = time.time()
    os.kill(children(pid_of(".deploy/wsgi.pid"))[0], signal.SIGKILL)
    return Window("kill a gunicorn worker (SIGKILL)", start, time.time(), allowance=0, cuts="wsgi")


def kill_celery_child(processes: int) -> Window:
    """SIGKILL one prefork child: its task is lost, the pool forks a new child."""
    start = time.time()
    os.kill(children(pid_of(".deploy/celery.pid"))[0], signal.SIGKILL)
    return Window("kill a Celery child (SIGKILL)", start, time.time(), allowance=0)


def pause_redis(processes: int) -> Window:
    """SIGSTOP for longer than the socket timeout: connections hang instead of failing. Each
    process that must renew meanwhile, or within CACHE_RETRY_INTERVAL of its failed cache call,
    cannot see the others' lock: one token per process at most."""
    pid = pid_of(".redis/redis.pid")
    start = time.time()
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(REDIS_PAUSE)
    finally:
        os.kill(pid, signal.SIGCONT)
    return Window(f"pause Redis {REDIS_PAUSE:g} s (SIGSTOP)", start, time.time(), processes)


def restart_redis(processes: int) -> Window:
    """Stop and start again, empty (no persistence): the shared token and lock are gone, and a
    process that saw the cache fail leaves it alone for CACHE_RETRY_INTERVAL (it renews on its
    own meanwhile): one token per process at most."""
    start = time.time()
    script("redis.sh", "restart")
    return Window("restart Redis (empty)", start, time.time(), allowance=processes)


def restart_keycloak(processes: int) -> Window:
    """Stop and start on the same database (KEYCLOAK_KEEP_DATA=1), as an upgrade does, just
    after a renewal: the next renewal fails, the token expires during the outage, and the
    failed renewal's back-off (LOCK_TIMEOUT) outlasts the outage, as in a quicker restart."""
    wait_for_fresh_token()
    start = time.time()
    script("keycloak.sh", "stop")
    script("keycloak.sh", "start", KEYCLOAK_KEEP_DATA="1")
    return Window("restart Keycloak", start, time.time(), allowance=1, keycloak_down=True)


def fail_over_redis(processes: int) -> Window:
    """SIGKILL the primary that the Sentinel watches (scripts/sentinel.sh) as the next renewal
    is due (two thirds of a lifetime after one): the renewal's lock or token may be lost with it,
    and the Sentinel promotes the replica about a second later. Until then cache calls fail, so
    like any Redis fault it may cost one token per process that saw a failure."""
    wait_for_fresh_token()
    time.sleep(RENEWAL_DUE - 0.2)
    before = sentinel_primary()
    start = time.time()
    os.kill(pid_of(f".sentinel/{before}.pid"), signal.SIGKILL)
    deadline = start + 60
    while sentinel_primary() == before and time.time() < deadline:
        time.sleep(0.1)
    return Window("Redis primary killed, Sentinel failover", start, time.time(), processes)


def sentinel_primary() -> str:
    out = subprocess.run(
        [str(ROOT / "scripts" / "sentinel.sh"), "primary"], capture_output=True, text=True
    )
    return out.stdout.strip()


def wait_for_fresh_token(seconds: float = 30) -> None:
    """Until the deployed app's token was just renewed (the demo's token view says how long it
    has left), so that a fault lands at the same point of every token's life."""
    url = f"http://127.0.0.1:{os.environ.get('DEPLOY_WSGI_PORT', '8010')}/api/token/"
    deadline, before = time.time() + seconds, None
    while time.time() < deadline:
        try:
            left = requests.get(url, timeout=5).json().get("expires_in")
        except (requests.RequestException, ValueError):
            left = None
        if isinstance(left, int) and isinstance(before, int) and left > before + 1:
            return  # a new token: its time left jumped up
        before = left
        time.sleep(0.2)


Fault = Callable[[int], Window]
FAULTS: dict[str, Fault] = {
    "gunicorn": kill_gunicorn_worker,
    "celery": kill_celery_child,
    "pause": pause_redis,
    "redis": restart_redis,
    "keycloak": restart_keycloak,
    "failover": fail_over_redis,
}

# (seconds after the load starts, fault): each fault leaves the next one a token lifetime or
# more, so that what it costs shows in its own window.
CI_PLAN: list[tuple[float, str]] = [
    (12, "gunicorn"),
    (20, "celery"),
    (28, "pause"),
    (44, "redis"),
    (62, "keycloak"),
]
CYCLE = 110.0  # the full soak repeats the plan every CYCLE seconds
SENTINEL_PLAN: list[tuple[float, str]] = [(20, "failover")]


def plan(name: str, seconds: float) -> list[tuple[float, str]]:
    """The faults of a run: "ci" (each once), "full" (repeated for ``seconds``) or "sentinel"."""
    if name == "ci":
        return CI_PLAN
    if name == "sentinel":
        return SENTINEL_PLAN
    return [
        (cycle * CYCLE + at, fault)
        for cycle in range(int(seconds // CYCLE))
        for at, fault in CI_PLAN
        if cycle * CYCLE + at + 40 < seconds
    ]
