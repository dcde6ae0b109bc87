"""How the shared-cache traffic grows with the number of processes (issue 23).

N worker processes (4, 16, 64) share one Redis through Django's ``RedisCache``; each has a few
threads calling ``get_access_token()`` in a loop, against a ``FakeKeycloak`` whose token
endpoint answers after a fixed delay (1.5 s) with short-lived tokens (12 s), over a few
lifetimes; then nobody calls until the token has expired everywhere, and every process calls
again (a second cold start, when processes know how long a fetch takes). Redis's ``INFO
commandstats`` is read before the start, when every process has its first token (the cold
start), before and after the second cold start (the warm run, through renewals, lies between).
With ``--before REF``, the same sizes run first on the package as it is at git revision REF,
side by side.

    python -m benchmarks.cache_traffic --redis-url redis://127.0.0.1:6390/0 --before main

(Redis must be running: ``SERVICES=redis scripts/with-services.sh .venv/bin/python -m
benchmarks.cache_traffic ...`` starts one on ``REDIS_PORT``.)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NOT_OURS = ("info", "flushdb", "ping", "select", "hello", "client", "command", "config")


def redis_commands(client: Any) -> dict[str, int]:
    """Commands Redis ran so far, by name, without the benchmark's own."""
    stats = client.info("commandstats")
    counts = {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}
    return {name: calls for name, calls in counts.items() if name.split("|")[0] not in NOT_OURS}


def difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def package_at(revision: str, into: Path) -> Path:
    """The package as it is at ``revision``, extracted under ``into``."""
    archive = subprocess.run(
        ["git", "archive", revision, "keycloak_jwt_auth"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def run_size(
    code: Path, processes: int, args: argparse.Namespace, fake: Any, client: Any
) -> dict[str, Any]:
    client.flushdb()
    fake.received.clear()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        settings = fake.settings(REFRESH_MARGIN=30)
        path = [str(code), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path)}
        command = [sys.executable, "-m", "benchmarks.cache_traffic", "--worker", str(work)]
        options = [f"--redis-url={args.redis_url}", f"--threads={args.threads}"]
        options += [f"--settings={json.dumps(settings)}", f"--duration={args.duration}"]
        options += [f"--interval={args.interval}", f"--lifetime={args.lifetime}"]
        options.append(f"--delay={args.delay}")
        workers = [
            subprocess.Popen([*command, *options, f"--index={i}"], cwd=work, env=env)
            for i in range(processes)
        ]
        wait_for(lambda: len(list(work.glob("ready-*"))) == processes, 300)
        before = redis_commands(client)
        start_at = time.time() + 0.5
        (work / "go.tmp").write_text(str(start_at))
        (work / "go.tmp").rename(work / "go")  # whole: a worker never reads it half-written
        wait_for(lambda: len(list(work.glob("first-*"))) == processes, 120)
        cold_done, cold = time.time(), redis_commands(client)
        time.sleep(max(0.0, start_at + args.duration + args.lifetime - time.time()))
        warm = redis_commands(client)  # nobody calls now: the token expires everywhere
        wait_for(lambda: len(list(work.glob("again-*"))) == processes, 120)
        again = redis_commands(client)
        for worker in workers:
            assert worker.wait(timeout=args.duration + 120) == 0
        reports = [json.loads((work / f"report-{i}.json").read_text()) for i in range(processes)]
    counts = {"before": before, "cold": cold, "warm": warm, "again": again}
    return summary(processes, args, reports, counts, cold_done, fake.token_requests)


def summary(
    processes: int,
    args: argparse.Namespace,
    reports: list[dict[str, Any]],
    counts: dict[str, dict[str, int]],
    cold_done: float,
    token_requests: int,
) -> dict[str, Any]:
    started = min(r["started"] for r in reports)
    firsts = sorted(r["first_token"] for r in reports)
    seconds = sorted(r["again_token"] for r in reports)
    until = max(r["until"] for r in reports)
    cold = difference(counts["cold"], counts["before"])
    warm = difference(counts["warm"], counts["cold"])
    again = difference(counts["again"], counts["warm"])
    lifetimes = (until - cold_done) / args.lifetime
    renewals = int((until - firsts[0]) // (args.lifetime * 2 / 3))
    return {
        "processes": processes,
        "backend": reports[0]["backend"],
        "cold_commands_per_process": sum(cold.values()) / processes,
        "warm_commands_per_process_per_lifetime": sum(warm.values()) / processes / lifetimes,
        "again_commands_per_process": sum(again.values()) / processes,
        "cold_by_command": cold,
        "warm_by_command": warm,
        "again_by_command": again,
        "first_token_s": firsts[0] - started,
        "all_first_tokens_s": firsts[-1] - started,
        # After the first token was stored, how long until each other process had it.
        **extra_latency("waiter_extra", firsts),
        **extra_latency("again_extra", seconds),
        "token_requests": token_requests,
        "ideal_token_requests": 1 + renewals + 1,  # the first, the renewals, the second cold start
        "errors": sum(r["errors"] for r in reports),
        "calls": sum(r["calls"] for r in reports),
    }


def extra_latency(name: str, times: list[float]) -> dict[str, float]:
    """From the first process's token to each other process's: median and largest, in ms."""
    extra = [(t - times[0]) * 1000 for t in times[1:]] or [0.0]
    return {f"{name}_median_ms": statistics.median(extra), f"{name}_max_ms": max(extra)}


def wait_for(condition: Any, seconds: float) -> None:
    deadline = time.time() + seconds
    while not condition():
        if time.time() > deadline:
            raise TimeoutError("workers did not get there in time")
        time.sleep(0.05)


# --- one worker process ---------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    from support.shared_cache import configure

    work = Path(args.worker)
    configure(args.redis_url, INSTALLED_APPS=["keycloak_jwt_auth"], KEYCLOAK_JWT_AUTH=args.settings)
    from django.conf import settings
    from django.core.cache import cache

    from keycloak_jwt_auth import get_access_token, get_token_manager

    get_token_manager()  # imported and built before the start, like a warmed-up web worker
    cache.get("benchmark:connect")  # connected too (before the first count)
    (work / f"ready-{args.index}").touch()
    wait_for(lambda: (work / "go").exists(), 300)
    start_at = float((work / "go").read_text())
    time.sleep(max(0.0, start_at - time.time()))
    until = start_at + args.duration
    report: dict[str, Any] = {"started": time.time(), "calls": 0, "errors": 0, "until": until}
    report["backend"] = settings.CACHES["default"]["BACKEND"].split(".")[0]  # django, django_redis

    def loop(until: float, seen: threading.Event, name: str) -> None:
        while time.time() < until:
            try:
                get_access_token()
            except Exception:  # a benchmark counts failures instead of stopping
                report["errors"] += 1
            else:
                if not seen.is_set():
                    seen.set()
                    report.setdefault(f"{name}_token", time.time())
                    (work / f"{name}-{args.index}").touch()
            report["calls"] += 1
            time.sleep(args.interval)

    run_threads(args.threads, loop, until, threading.Event(), "first")
    # Idle until the token has expired everywhere (and a little more), then a second cold start.
    time.sleep(max(0.0, until + args.lifetime + args.delay + 1 - time.time()))
    run_threads(args.threads, loop, time.time() + args.delay + 2.5, threading.Event(), "again")
    (work / f"report-{args.index}.json").write_text(json.dumps(report))


def run_threads(count: int, target: Any, *args: Any) -> None:
    threads = [threading.Thread(target=target, args=args) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# --- the run --------------------------------------------------------------------------------

COLUMNS = [
    ("code", "code"),
    ("backend", "cache"),
    ("processes", "N"),
    ("cold_commands_per_process", "cold cmds/proc"),
    ("warm_commands_per_process_per_lifetime", "warm cmds/proc/lifetime"),
    ("all_first_tokens_s", "all have a token (s)"),
    ("waiter_extra_median_ms", "waiter extra p50 (ms)"),
    ("waiter_extra_max_ms", "max (ms)"),
    ("again_commands_per_process", "2nd cold cmds/proc"),
    ("again_extra_median_ms", "2nd waiter extra p50 (ms)"),
    ("again_extra_max_ms", "max (ms) "),
    ("token_requests", "token requests"),
    ("ideal_token_requests", "ideal"),
    ("errors", "errors"),
]


def table(rows: list[dict[str, Any]]) -> str:
    def cell(value: Any) -> str:
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(title for _, title in COLUMNS) + " |"]
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(cell(row[key]) for key, _ in COLUMNS) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--redis-url", default=f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6390')}/0"
    )
    parser.add_argument("--processes", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--threads", type=int, default=3)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--lifetime", type=int, default=12, help="token lifetime, seconds")
    parser.add_argument("--delay", type=float, default=1.5, help="token endpoint's delay, s")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per size")
    parser.add_argument("--before", help="git revision whose package runs first, for comparison")
    parser.add_argument("--out", type=Path, help="JSON results")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--index", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--settings", type=json.loads, default={}, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return
    import redis

    from keycloak_jwt_auth.testing import FakeKeycloak

    client = redis.Redis.from_url(args.redis_url)
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as folder,
        FakeKeycloak(token_lifespan=args.lifetime) as fake,
    ):
        fake.slow_seconds = args.delay
        fake.fail("slow")
        variants = [("after", ROOT)]
        if args.before:
            variants.insert(0, (f"before ({args.before})", package_at(args.before, Path(folder))))
        for processes in args.processes:
            for name, code in variants:
                row = {"code": name, **run_size(code, processes, args, fake, client)}
                rows.append(row)
                print(table([row]).splitlines()[-1], flush=True)
    print(table(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
