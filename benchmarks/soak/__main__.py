"""Runs the load against the deployed demo, injects the faults on schedule, counts the token
requests at Keycloak and prints (and saves) the table; exits 1 when the promise broke.

    python -m benchmarks.soak [--plan ci|full|sentinel] [--seconds 600]
    (scripts/soak.sh deploys the demo and starts what else it needs)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

from support.peers import configure_django
from support.realm import realm_secret

from .faults import FAULTS, ROOT, Window, plan
from .load import HttpLoad, TaskStream, task_calls, views
from .report import assess, keycloak_returns, table

EVENTS_CLIENT = "django-service"  # may read the realm's events (view-events)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    port = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--plan",
        choices=["ci", "full", "sentinel"],
        default="ci",
        help="each fault once; the faults repeated for --seconds; a Sentinel failover",
    )
    parser.add_argument("--seconds", type=float, default=120.0, help="how long the load runs")
    parser.add_argument("--wsgi", default=f"http://127.0.0.1:{port('DEPLOY_WSGI_PORT', '8010')}")
    parser.add_argument("--asgi", default=f"http://127.0.0.1:{port('DEPLOY_ASGI_PORT', '8011')}")
    parser.add_argument("--broker", default=os.environ.get("CELERY_BROKER_URL", ""))
    parser.add_argument("--client", default="django-deploy", help="the deployed app's client")
    parser.add_argument("--lifetime", type=float, default=12.0, help="its token lifespan (s)")
    parser.add_argument("--threads", type=int, default=4, help="concurrent HTTP callers")
    parser.add_argument("--pause", type=float, default=0.05, help="each caller's pause (s)")
    parser.add_argument("--task-rate", type=float, default=5.0, help="Celery tasks a second")
    parser.add_argument("--processes", type=int, default=10, help="app processes deployed")
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "soak")
    return parser.parse_args(argv)


def run_faults(schedule: list[tuple[float, str]], since: float, processes: int) -> list[Window]:
    windows = []
    for at, name in schedule:
        time.sleep(max(0.0, since + at - time.time()))
        window = FAULTS[name](processes)
        print(
            f"soak: +{window.start - since:5.1f} s  {window.name}: "
            f"{window.end - window.start:.1f} s",
            file=sys.stderr,
        )
        windows.append(window)
    return windows


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    configure_django("locmemcache://", EVENTS_CLIENT, realm_secret(EVENTS_CLIENT))
    from benchmarks.common import token_requests

    load = HttpLoad(views(args.wsgi, args.asgi), args.threads, args.pause)
    tasks = TaskStream(args.broker, args.task_rate)
    since = time.time()
    load.start()
    tasks.start()
    try:
        windows = run_faults(plan(args.plan, args.seconds), since, args.processes)
        time.sleep(max(0.0, since + args.seconds - time.time()))
    finally:
        load.stop()
        tasks.stop()
    until = time.time()
    time.sleep(3)  # the tasks still queued finish
    calls = load.calls + task_calls(ROOT / ".deploy" / "celery.log", since)
    token_times = [e["time"] / 1000 for e in token_requests(args.client, since, until)]
    parts, overall = assess(calls, token_times, windows, since, until, args.lifetime)

    ran = sum(1 for c in calls if c.kind == "task")
    report = "\n".join(
        [
            f"## Fault run under load ({args.plan}): {until - since:.0f} s, {args.lifetime:g} s "
            f"tokens, {args.threads} HTTP callers + {args.task_rate:g} Celery tasks/s, "
            f"cache {os.environ.get('CACHE_URL', '?').split('?')[0]}",
            "",
            table(parts, overall),
            "",
            f"Celery tasks: {tasks.sent} sent, {tasks.refused} refused by the broker (Redis down), "
            f"{ran} ran. Token requests counted at Keycloak: {len(token_times)}; one per "
            f"renewal period: {overall.renewals}, plus what the faults justify: at most "
            f"{overall.ideal}.",
            f"Keycloak restarts: {keycloak_returns(windows, token_times)}.",
            "Justified failures: "
            + (", ".join(f"{n} {why}" for why, n in overall.justified.items()) or "none"),
            "Broken promise: " + ("; ".join(overall.broken[:20]) if overall.broken else "none"),
        ]
    )
    print(report)
    args.out.mkdir(parents=True, exist_ok=True)
    name = f"soak-{args.plan}"
    (args.out / f"{name}.md").write_text(report + "\n")
    raw = {"since": since, "until": until, "tokens": token_times}
    raw |= {"windows": [asdict(w) for w in windows], "calls": [asdict(c) for c in calls]}
    (args.out / f"{name}.json").write_text(json.dumps(raw))
    too_many = overall.token_requests > overall.ideal
    if too_many:
        print(f"soak: {overall.token_requests} token requests > {overall.ideal}", file=sys.stderr)
    return 1 if overall.broken or too_many or not calls or not ran else 0


if __name__ == "__main__":
    sys.exit(main())
