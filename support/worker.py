"""One worker process, started by the benchmarks and the cross-process tests: builds one peer,
then either

- ``loop``: T threads call ``header()`` every ``--interval`` seconds from ``--start-at`` to
  ``--until`` (the stampede and expiry-boundary runs), or
- ``hot``: one thread calls it ``--calls`` times back to back (the hot path), beside a raw
  ``cache.get`` of a JSON token as the floor.

It writes a JSON report: calls, errors, tokens handed out after their ``exp``, the distinct
tokens seen (by their ``jti`` claim, never the token), latencies in nanoseconds.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, TypeVar

import jwt

from .peers import PEERS, Peer
from .realm import ROOT, realm_secret


def start_worker(
    peer: str,
    mode: str,
    out: Path,
    *,
    client: str,
    cache_url: str = "",
    database_url: str = "",
    app_settings: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    module: str = __name__,
    **options: Any,
) -> subprocess.Popen[bytes]:
    """Start this module (or ``module``: ``support.async_worker``) as a process; ``options``
    become ``--name=value`` arguments."""
    args = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    if cache_url:
        args.append(f"--cache-url={cache_url}")
    if database_url:
        args.append(f"--database-url={database_url}")
    if app_settings:
        args.append(f"--app-settings={json.dumps(app_settings)}")
    command = [sys.executable, "-m", module, peer, mode, f"--client={client}", f"--out={out}"]
    environment = {**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*command, *args], cwd=ROOT, env=environment)


def run_workers(
    peer: str, folder: Path, *, processes: int, duration: float, **options: Any
) -> list[dict[str, Any]]:
    """``processes`` workers of ``peer`` in ``loop`` mode, all starting in 3 s and calling for
    ``duration`` seconds (``options``: ``start_worker``'s); their reports, once all are done."""
    start_at = time.time() + 3.0
    outs = [folder / f"{i}.json" for i in range(processes)]
    workers = [
        start_worker(peer, "loop", out, start_at=start_at, until=start_at + duration, **options)
        for out in outs
    ]
    codes = [worker.wait(timeout=120 + duration) for worker in workers]
    assert codes == [0] * processes, codes
    return [json.loads(out.read_text()) for out in outs]


class Observer:
    """Collects what the threads see. Decodes each distinct token once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.expiry: dict[str, tuple[str, float]] = {}  # header -> (jti, exp)
        self.latencies: list[int] = []
        self.calls = self.expired = self.errors = 0
        self.error_samples: set[str] = set()

    def see(self, header: str, started: float, finished: float) -> None:
        known = self.expiry.get(header)
        if known is None:
            token = header.rsplit(" ", 1)[-1]  # "Bearer <token>", or the token alone
            claims = jwt.decode(token, options={"verify_signature": False})
            known = self.expiry[header] = (claims["jti"], float(claims["exp"]))
        with self.lock:
            self.calls += 1
            self.latencies.append(round((finished - started) * 1e9))
            if known[1] <= time.time():
                self.expired += 1

    def fail(self, exc: BaseException) -> None:
        with self.lock:
            self.calls += 1
            self.errors += 1
            if len(self.error_samples) < 5:
                self.error_samples.add(f"{type(exc).__name__}: {exc}")

    def report(self, **extra: Any) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "calls": self.calls,
            "errors": self.errors,
            "error_samples": sorted(self.error_samples),
            "expired_served": self.expired,
            "tokens": sorted({jti for jti, _ in list(self.expiry.values())}),  # a snapshot
            "latencies_ns": self.latencies,
            **extra,
        }


def call_loop(peer: Peer, observer: Observer, until: float, interval: float) -> None:
    while time.time() < until:
        started = time.perf_counter()
        try:
            header = peer.header()
        except Exception as exc:  # a benchmark records failures instead of stopping
            observer.fail(exc)
        else:
            observer.see(header, started, time.perf_counter())
        if interval:
            time.sleep(interval)


def run_loop(
    peer: Peer,
    args: argparse.Namespace,
    alongside: Callable[[Observer], None] | None = None,
) -> dict[str, Any]:
    """``args.threads`` threads call the peer from ``args.start_at`` to ``args.until``;
    ``alongside`` (e.g. asyncio tasks) runs meanwhile in this thread, seen by the same observer."""
    observer = Observer()
    threads = [
        threading.Thread(target=call_loop, args=(peer, observer, args.until, args.interval))
        for _ in range(args.threads)
    ]
    time.sleep(max(0.0, args.start_at - time.time()))
    for thread in threads:
        thread.start()
    if alongside is not None:
        alongside(observer)
    for thread in threads:
        thread.join()
    return observer.report(**app_counters(peer))


def run_hot(peer: Peer, args: argparse.Namespace) -> dict[str, Any]:
    peer.header()  # warm
    observer = Observer()
    timer = time.perf_counter
    for _ in range(args.calls):
        started = timer()
        header = peer.header()
        observer.see(header, started, timer())
    return observer.report(floor_ns=cache_floor(args.calls), **app_counters(peer))


def cache_floor(calls: int) -> list[int] | None:
    """Raw ``cache.get`` of a token-sized JSON value: the lookup a cache-based client can't beat."""
    from django.conf import settings

    if not settings.configured:
        return None
    from django.core.cache import cache

    cache.set("benchmark:floor", json.dumps({"value": "x" * 1400, "expires_at": 1.0}), 600)
    timer, latencies = time.perf_counter, []
    for _ in range(calls):
        started = timer()
        cache.get("benchmark:floor")
        latencies.append(round((timer() - started) * 1e9))
    return latencies


class CacheEvents(logging.Handler):
    """Counts the app's 'cache failed' and 'cache works again' log lines."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fallbacks = self.recoveries = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        self.fallbacks += "falls back to in-process caching" in message
        self.recoveries += "works again" in message


cache_events = CacheEvents()


class Counted(Protocol):
    """A sync or async peer: this app's peers count their token requests."""

    fetches: Callable[[], int] | None


def app_counters(peer: Counted) -> dict[str, Any]:
    if peer.fetches is None:
        return {}
    return {
        "app_fetches": peer.fetches(),
        "cache_fallbacks": cache_events.fallbacks,
        "cache_recoveries": cache_events.recoveries,
    }


def worker_parser(
    description: str | None, peers: list[str], modes: list[str]
) -> argparse.ArgumentParser:
    """The arguments of a worker process (this one, and ``support.async_worker``)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("peer", choices=peers)
    parser.add_argument("mode", choices=modes)
    parser.add_argument("--client", default="django-short-lived")
    parser.add_argument("--cache-url", default="locmemcache://")
    parser.add_argument(
        "--database-url",
        default="",
        help="Django database URL (postgres://...) for a dbcache:// cache; its table must exist",
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--until", type=float, default=0.0)
    parser.add_argument("--interval", type=float, default=0.005)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--app-settings",
        type=json.loads,
        default={},
        help="JSON object of KEYCLOAK_JWT_AUTH overrides for the app (e.g. LOCK_TIMEOUT)",
    )
    return parser


P = TypeVar("P")


def build_peer(builders: Mapping[str, Callable[..., P]], args: argparse.Namespace) -> P:
    logging.getLogger("keycloak_jwt_auth").addHandler(cache_events)
    return builders[args.peer](
        args.cache_url,
        args.client,
        realm_secret(args.client),
        overrides=args.app_settings,
        database_url=args.database_url,
    )


def main(argv: list[str] | None = None) -> None:
    args = worker_parser(__doc__, sorted(PEERS), ["loop", "hot"]).parse_args(argv)
    peer = build_peer(PEERS, args)
    report = run_loop(peer, args) if args.mode == "loop" else run_hot(peer, args)
    args.out.write_text(json.dumps({"peer": peer.name, "note": peer.note, **report}))


if __name__ == "__main__":
    main()
