"""``cache.add`` on one key from several processes at once, round after round: who won each?

    python -m support.add_race --cache-url=URL [--database-url=URL] --processes=8 --rounds=5 \\
        --state=absent|expired|as-is --out=FILE

Each process sets Django up with the cache (``support.shared_cache``), connects, then for each
round waits at a barrier with the others and this process, sleeps until the same instant, and
calls ``cache.add(KEY, ...)`` once. Before each round this process makes the key ``absent``
(deleted), ``expired`` (set with a 1 s timeout, then left to expire: the entry may still be
stored, only out of date), or leaves it ``as-is`` (the caller prepared it). With a database
cache it also records what the table held for the key just before the round (read with SQL,
which, unlike ``cache.get``, never deletes an expired row).

The JSON report: ``{"rounds": [{"round", "state", "row", "winners", "errors"}]}``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from .shared_cache import configure

KEY = "add-race"
ADDED_TIMEOUT = 30  # seconds a winner's entry lives: every later add in the round must lose
START_DELAY = 0.05  # seconds from the barrier to the common start instant
EXPIRED_WAIT = 2.2  # memcached counts time in whole seconds: a 1 s entry is gone after 2


def stored_key(key: str = KEY) -> str:
    """The key as Django stores it (default KEY_FUNCTION, no prefix, version 1)."""
    return f":1:{key}"


def contender(
    index: int,
    cache_url: str,
    database_url: str,
    rounds: int,
    barrier: Barrier,
    start: Any,  # a shared double: the start instant of the round
    results: Queue[tuple[int, int, bool, str]],
) -> None:
    configure(cache_url, database_url)
    from django.core.cache import cache

    cache.get("add-race:warm-up")  # connect now: the race is about add, not connecting
    for number in range(rounds):
        barrier.wait()
        time.sleep(max(0.0, start.value - time.time()))
        try:
            won = bool(cache.add(KEY, f"{index}:{os.getpid()}:{number}", ADDED_TIMEOUT))
        except Exception as exc:  # reported, and the test fails on it
            results.put((number, index, False, f"{type(exc).__name__}: {exc}"))
        else:
            results.put((number, index, won, ""))


def prepare(state: str) -> None:
    from django.core.cache import cache

    if state == "absent":
        cache.delete(KEY)
    elif state == "expired":
        cache.set(KEY, "stale", 1)
        time.sleep(EXPIRED_WAIT)


def stored_row(database_url: str) -> str | None:
    """For a database cache: ``absent``, ``expired`` or ``live``, read with SQL."""
    if not database_url:
        return None
    from django.core.cache import cache
    from django.db import connection

    table = connection.ops.quote_name(cache._table)  # type: ignore[attr-defined]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT expires < CURRENT_TIMESTAMP FROM {table} WHERE cache_key = %s",
            [stored_key()],
        )
        row = cursor.fetchone()
    return "absent" if row is None else ("expired" if row[0] else "live")


def race(cache_url: str, database_url: str, processes: int, rounds: int, state: str) -> Any:
    configure(cache_url, database_url)
    context = multiprocessing.get_context("spawn")  # fresh processes: nothing shared but these
    barrier = context.Barrier(processes + 1)
    start = context.RawValue("d", 0.0)  # written before the barrier, read after it
    results: Queue[tuple[int, int, bool, str]] = context.Queue()
    workers = [
        context.Process(
            target=contender,
            args=(index, cache_url, database_url, rounds, barrier, start, results),
        )
        for index in range(processes)
    ]
    for worker in workers:
        worker.start()
    report = []
    try:
        for number in range(rounds):
            prepare(state)
            row = stored_row(database_url)
            start.value = time.time() + START_DELAY
            barrier.wait(timeout=120)
            answers = [results.get(timeout=120) for _ in range(processes)]
            assert all(answer[0] == number for answer in answers)
            report.append(
                {
                    "round": number,
                    "state": state,
                    "row": row,
                    "winners": sorted(index for _, index, won, _ in answers if won),
                    "errors": sorted({error for *_, error in answers if error}),
                }
            )
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    return {"rounds": report}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cache-url", required=True)
    parser.add_argument("--database-url", default="")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--state", choices=["absent", "expired", "as-is"], default="absent")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    report = race(args.cache_url, args.database_url, args.processes, args.rounds, args.state)
    args.out.write_text(json.dumps(report))


if __name__ == "__main__":
    main()
