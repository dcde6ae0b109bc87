"""``cache.add`` is the whole cross-process renewal lock: on one key, from several processes at
once, exactly one may win. Checked on the real servers, with the key absent, and with an expired
entry for it still stored (what a lock left to time out leaves: a killed holder, or a failed
renewal's back-off).

Django's DatabaseCache fails the second case. Its ``add`` reads the row, and when the row has
expired, overwrites it with an UPDATE; nothing locks the row between the read and the write, so
every process that read the expired row "adds" the key. With no row it holds: each process
INSERTs, and the primary key lets one INSERT win. The last two tests show both deterministically,
holding PostgreSQL's row lock so that all the processes line up inside ``add``.
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from support.add_race import stored_key
from support.shared_cache import SharedCache

from .conftest import CACHE_TABLE, ROOT, wait_for_lock_waiters

PROCESSES = 8
ROUNDS = 5

NOT_ATOMIC = (
    "DatabaseCache.add over an expired row is a read, then an UPDATE, with no lock between: "
    "several processes win (test_database_cache_add_over_an_expired_row_lets_all_8_win)"
)
CASES = [
    pytest.param("redis", "absent", marks=pytest.mark.redis, id="redis-absent"),
    pytest.param("redis", "expired", marks=pytest.mark.redis, id="redis-expired"),
    pytest.param("memcached", "absent", marks=pytest.mark.memcached, id="memcached-absent"),
    pytest.param("memcached", "expired", marks=pytest.mark.memcached, id="memcached-expired"),
    pytest.param("postgres", "absent", marks=pytest.mark.postgres, id="postgres-absent"),
    pytest.param(
        "postgres",
        "expired",
        marks=[
            pytest.mark.postgres,
            pytest.mark.xfail(raises=AssertionError, strict=True, reason=NOT_ATOMIC),
        ],
        id="postgres-expired",
    ),
]


def start_race(
    cache: SharedCache, state: str, out: Path, *, rounds: int = ROUNDS
) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "support.add_race",
        f"--cache-url={cache.cache_url}",
        f"--processes={PROCESSES}",
        f"--rounds={rounds}",
        f"--state={state}",
        f"--out={out}",
    ]
    if cache.database_url:
        command.append(f"--database-url={cache.database_url}")
    return subprocess.Popen(command, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def finish_race(racer: subprocess.Popen[bytes], out: Path) -> list[dict[str, Any]]:
    """The rounds played; a race that could not run fails the test (never an expected failure:
    pytest.fail is no AssertionError)."""
    if racer.wait(timeout=120) != 0:
        pytest.fail(f"support.add_race exited with {racer.returncode}")
    rounds: list[dict[str, Any]] = json.loads(out.read_text())["rounds"]
    errors = [error for played in rounds for error in played["errors"]]
    if errors:
        pytest.fail(f"cache.add raised: {errors}")
    return rounds


@pytest.mark.parametrize(("shared_cache", "state"), CASES, indirect=["shared_cache"])
def test_add_from_8_processes_at_once_has_one_winner(
    shared_cache: SharedCache, state: str, tmp_path: Path
) -> None:
    out = tmp_path / "race.json"
    rounds = finish_race(start_race(shared_cache, state, out), out)

    rows = {played["row"] for played in rounds}
    if len(rounds) != ROUNDS or (shared_cache.database_url and rows != {state}):
        pytest.fail(f"the race did not play the {state} case: {rounds}")
    assert [len(played["winners"]) for played in rounds] == [1] * ROUNDS, rounds


# --- DatabaseCache on PostgreSQL, step by step ----------------------------------------------


@pytest.fixture
def database(database_cache: SharedCache) -> Iterator[SharedCache]:
    database_cache.clear()
    yield database_cache
    database_cache.clear()


def connect(database: SharedCache, *, autocommit: bool = False) -> psycopg.Connection[Any]:
    return psycopg.connect(database.database_url, autocommit=autocommit)


def stored_value(value: str) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


@pytest.mark.postgres
def test_database_cache_add_over_an_expired_row_lets_all_8_win(
    database: SharedCache, tmp_path: Path
) -> None:
    out = tmp_path / "race.json"
    with connect(database, autocommit=True) as watch, connect(database) as holder:
        holder.execute(
            f"INSERT INTO {CACHE_TABLE} (cache_key, value, expires)"
            " VALUES (%s, %s, now() - interval '1 minute')",
            [stored_key(), stored_value("a lock left to expire")],
        )
        holder.commit()
        # Hold the expired row, as one add does between its read and its write: the 8 processes
        # read it (a read waits for no lock), find it expired, and wait to UPDATE it.
        holder.execute(
            f"SELECT 1 FROM {CACHE_TABLE} WHERE cache_key = %s FOR UPDATE", [stored_key()]
        )
        racer = start_race(database, "as-is", out, rounds=1)
        wait_for_lock_waiters(watch, PROCESSES)
        holder.commit()  # the row is still expired; each UPDATE goes ahead in turn
        [played] = finish_race(racer, out)
        row = watch.execute(
            f"SELECT value, expires > now() FROM {CACHE_TABLE} WHERE cache_key = %s", [stored_key()]
        ).fetchone()

    assert played["row"] == "expired"
    assert played["winners"] == list(range(PROCESSES))  # every process "added" the key
    assert row is not None and row[1]  # the one stored is the last writer's, live
    assert pickle.loads(base64.b64decode(row[0])).split(":")[0] in {str(i) for i in range(8)}


@pytest.mark.postgres
def test_database_cache_add_without_a_row_lets_1_of_8_win(
    database: SharedCache, tmp_path: Path
) -> None:
    out = tmp_path / "race.json"
    with connect(database, autocommit=True) as watch, connect(database) as holder:
        # An INSERT not yet committed: the 8 processes read no row, and their INSERTs wait on
        # the primary key for this transaction's outcome.
        holder.execute(
            f"INSERT INTO {CACHE_TABLE} (cache_key, value, expires)"
            " VALUES (%s, %s, now() + interval '1 minute')",
            [stored_key(), stored_value("never committed")],
        )
        racer = start_race(database, "as-is", out, rounds=1)
        wait_for_lock_waiters(watch, PROCESSES)
        holder.rollback()  # no row after all: the INSERTs go ahead, and the key admits one
        [played] = finish_race(racer, out)

    assert played["row"] == "absent"
    assert len(played["winners"]) == 1
