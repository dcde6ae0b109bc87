"""The load: concurrent HTTP calls to the demo's JSON views, and a stream of Celery tasks whose
outcome the worker's own log records."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import requests

HTTP_TIMEOUT = 60.0  # longer than any wait the app may impose: a slow call is measured, not cut
TASK = "demo_project.tasks.count_users"


@dataclass(frozen=True)
class Call:
    """One HTTP call or one task: when it started (epoch seconds), how long it took, how it
    ended (``detail``: the status code, or the error's class)."""

    kind: str
    start: float
    seconds: float
    ok: bool
    detail: str = ""

    @property
    def end(self) -> float:
        return self.start + self.seconds

    @property
    def uses_admin_api(self) -> bool:
        """Calls that need Keycloak itself to answer, not just a valid token."""
        return self.kind.endswith("users") or self.kind == "task"


def views(wsgi: str, asgi: str) -> list[tuple[str, str]]:
    """The demo's JSON views that use the service-account token: the token's status (the token
    only) and a page of users (the token, then the Admin API), under WSGI and ASGI."""
    return [
        ("wsgi token", f"{wsgi}/api/token/"),
        ("asgi token", f"{asgi}/api/async/token/"),
        ("wsgi users", f"{wsgi}/api/users/?max=1"),
        ("asgi users", f"{asgi}/api/async/users/?max=1"),
    ]


class HttpLoad:
    """``threads`` loops, each calling the views in turn with ``pause`` seconds between calls."""

    def __init__(self, targets: list[tuple[str, str]], threads: int, pause: float) -> None:
        self.targets, self.pause = targets, pause
        self.calls: list[Call] = []  # list.append is atomic: the threads share it
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, args=(n,), daemon=True) for n in range(threads)
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(HTTP_TIMEOUT + 5)

    def _loop(self, offset: int) -> None:
        session = requests.Session()
        turn = offset
        while not self._stop.is_set():
            kind, url = self.targets[turn % len(self.targets)]
            turn += 1
            started, clock = time.time(), time.perf_counter()
            try:
                response = session.get(url, timeout=HTTP_TIMEOUT)
                ok, detail = response.status_code == 200, str(response.status_code)
            except requests.RequestException as exc:
                ok, detail = False, type(exc).__name__
            self.calls.append(Call(kind, started, time.perf_counter() - clock, ok, detail))
            self._stop.wait(self.pause)


class TaskStream:
    """Sends ``rate`` tasks a second to the broker; sends the broker refuses (it is down) are
    counted apart: they never reach the app."""

    def __init__(self, broker_url: str, rate: float) -> None:
        from celery import Celery

        self.app = Celery("soak", broker=broker_url)
        self.app.conf.update(
            task_publish_retry=False,
            broker_connection_retry_on_startup=True,
            broker_transport_options={"socket_timeout": 2, "socket_connect_timeout": 2},
        )
        self.interval = 1 / rate
        self.sent = self.refused = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.app.send_task(TASK)
                self.sent += 1
            except Exception:  # the broker (the Redis being restarted or paused) refused it
                self.refused += 1


# [2026-12-04 22:21:00,141: INFO/ForkPoolWorker-3] Task demo_project.tasks.count_users[...]
#   succeeded in 0.0995s: 30          (or: raised unexpected: KeycloakUnavailableError(...))
TASK_LINE = re.compile(
    r"^\[(?P<at>[\d-]+ [\d:,]+): \w+/[^\]]+\] Task " + re.escape(TASK) + r"\[[^\]]+\] "
    r"(?:succeeded in (?P<seconds>[\d.e-]+)s|raised unexpected: (?P<error>\w+))"
)


def task_calls(log: Path, since: float) -> list[Call]:
    """The tasks the Celery worker ran since ``since``, read from its log (local time). A failed
    task's log line has no duration: it counts as a failure with 0 s."""
    calls = []
    for line in log.read_text(errors="replace").splitlines():
        match = TASK_LINE.match(line)
        if not match:
            continue
        logged = datetime.strptime(match["at"], "%Y-%m-%d %H:%M:%S,%f").timestamp()
        seconds = float(match["seconds"] or 0)
        if logged - seconds >= since:
            ok = match["error"] is None
            calls.append(Call("task", logged - seconds, seconds, ok, match["error"] or "ok"))
    return calls
