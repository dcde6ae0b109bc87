"""A worker process whose threads and asyncio tasks both ask for the app's token, from
``--start-at`` to ``--until``: the async stampede of the cross-process tests.

    python -m support.mixed_worker --cache-url=redis://... --threads=4 --tasks=500 --out=F
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from .peers import this_app
from .realm import realm_secret
from .worker import Observer, run_loop


async def task_loop(observer: Observer, until: float, interval: float) -> None:
    from keycloak_jwt_auth import aget_access_token

    while time.time() < until:
        started = time.perf_counter()
        try:
            value = await aget_access_token()
        except Exception as exc:  # a worker records failures instead of stopping
            observer.fail(exc)
        else:
            observer.see(f"Bearer {value}", started, time.perf_counter())
        await asyncio.sleep(interval)


async def run_tasks(observer: Observer, tasks: int, until: float, interval: float) -> None:
    await asyncio.gather(*(task_loop(observer, until, interval) for _ in range(tasks)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", default="django-short-lived")
    parser.add_argument("--cache-url", default="locmemcache://")
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--start-at", type=float, default=0.0)
    parser.add_argument("--until", type=float, required=True)
    parser.add_argument("--interval", type=float, default=0.02)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    peer = this_app(args.cache_url, args.client, realm_secret(args.client))

    def tasks(observer: Observer) -> None:
        asyncio.run(run_tasks(observer, args.tasks, args.until, args.interval))

    args.out.write_text(json.dumps(run_loop(peer, args, alongside=tasks)))


if __name__ == "__main__":
    main()
