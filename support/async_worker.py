"""One async worker process, started by the benchmarks: builds one async peer inside its event
loop, then either

- ``hot``: one task awaits ``header()`` ``--calls`` times back to back (after one warm-up call);
- ``stampede``: ``--tasks`` tasks, cold (no token yet), released at the same instant, each awaits
  one header; their latencies count from the release. ``--deadline`` seconds after the release,
  a watchdog thread reports the tasks still waiting as unfinished and ends the process;
- ``heartbeat``: a heartbeat task sleeps ``--period`` (1 ms) in a loop and records every gap
  between two beats, while ``--tasks`` tasks await ``header()`` every ``--interval`` seconds from
  ``--start-at`` to ``--until`` (after one warm-up call before ``--start-at``: the window sees
  renewals, not the cold start); ``--tasks 0`` is the heartbeat alone.

It writes the same JSON report as ``support.worker`` (``beats``: [epoch at the beat, gap in ns]
for the heartbeat).

    python -m support.async_worker app heartbeat --client=django-short-lived --tasks=10 ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from .async_peers import ASYNC_PEERS, AsyncPeer
from .worker import Observer, app_counters, build_peer, worker_parser


async def timed(peer: AsyncPeer, observer: Observer, started: float | None = None) -> None:
    """One header, seen by ``observer``; its latency counts from ``started`` (default: now)."""
    started = time.perf_counter() if started is None else started
    try:
        header = await peer.header()
    except Exception as exc:  # a benchmark records failures instead of stopping
        observer.fail(exc)
    else:
        observer.see(header, started, time.perf_counter())


async def run_hot(peer: AsyncPeer, args: argparse.Namespace) -> dict[str, Any]:
    await peer.header()  # warm
    observer = Observer()
    for _ in range(args.calls):
        await timed(peer, observer)
    return observer.report()


async def run_stampede(peer: AsyncPeer, args: argparse.Namespace) -> dict[str, Any]:
    observer, go, released = Observer(), asyncio.Event(), [0.0]

    async def one() -> None:
        await go.wait()
        await timed(peer, observer, released[0])

    tasks = [asyncio.create_task(one()) for _ in range(args.tasks)]
    await asyncio.sleep(0)  # every task has started and waits for the release
    released[0] = time.perf_counter()
    watchdog = threading.Timer(args.deadline, give_up, (peer, observer, args, released[0]))
    watchdog.daemon = True
    watchdog.start()
    go.set()
    await asyncio.gather(*tasks)
    watchdog.cancel()
    return observer.report(seconds=time.perf_counter() - released[0], unfinished=0)


def give_up(peer: AsyncPeer, observer: Observer, args: argparse.Namespace, released: float) -> None:
    """The stampede's deadline, kept from a thread: a loop busy in httpcore 1.0's pool (each of
    its passes scans every queued request) may not run a timer for minutes. Report what was
    seen, and leave without cancelling the rest (that would cost as much again)."""
    with observer.lock:
        report = observer.report(
            seconds=time.perf_counter() - released, unfinished=args.tasks - observer.calls
        )
        text = report_text(peer, report)
    args.out.write_text(text)
    os._exit(0)


async def heartbeat(until: float, period: float) -> list[tuple[float, int]]:
    """[epoch time of the beat, ns since the previous beat] until ``until``."""
    beats, timer = [], time.perf_counter
    previous = timer()
    while time.time() < until:
        await asyncio.sleep(period)
        now = timer()
        beats.append((time.time(), round((now - previous) * 1e9)))
        previous = now
    return beats


async def call_every(peer: AsyncPeer, observer: Observer, until: float, interval: float) -> None:
    while time.time() < until:
        await timed(peer, observer)
        await asyncio.sleep(interval)


async def run_heartbeat(peer: AsyncPeer, args: argparse.Namespace) -> dict[str, Any]:
    if args.tasks:
        await peer.header()  # warm: the cold start is the stampede's story
    await asyncio.sleep(max(0.0, args.start_at - time.time()))
    observer = Observer()
    callers = [call_every(peer, observer, args.until, args.interval) for _ in range(args.tasks)]
    beats, *_ = await asyncio.gather(heartbeat(args.until, args.period), *callers)
    return observer.report(beats=beats)


MODES: dict[str, Callable[[AsyncPeer, argparse.Namespace], Awaitable[dict[str, Any]]]] = {
    "hot": run_hot,
    "stampede": run_stampede,
    "heartbeat": run_heartbeat,
}


def report_text(peer: AsyncPeer, report: dict[str, Any]) -> str:
    return json.dumps({"peer": peer.name, "note": peer.note, **report, **app_counters(peer)})


async def run(args: argparse.Namespace) -> None:
    peer = build_peer(ASYNC_PEERS, args)  # in the loop: its httpx client belongs to this loop
    args.out.write_text(report_text(peer, await MODES[args.mode](peer, args)))


def main(argv: list[str] | None = None) -> None:
    parser = worker_parser(__doc__, sorted(ASYNC_PEERS), sorted(MODES))
    parser.add_argument("--tasks", type=int, default=1)
    parser.add_argument("--period", type=float, default=0.001, help="the heartbeat's sleep")
    parser.add_argument("--deadline", type=float, default=60.0, help="stampede: seconds at most")
    asyncio.run(run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
