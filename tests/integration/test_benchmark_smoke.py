"""A smoke run of the benchmark harness (tiny sizes), the async step included: every contender
runs and is counted. Timings are reported by benchmarks/run.py, never asserted here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT

pytestmark = [pytest.mark.keycloak, pytest.mark.redis]


def test_benchmark_harness_smoke(keycloak_server: str, redis_server: str, tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", f"--out={out}"],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BENCH_REDIS_URL": redis_server,
            "KEYCLOAK_SERVER_URL": keycloak_server,  # the workers' Keycloak: the fixture's port
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads(out.read_text())
    assert results["machine"]["cores"] and results["machine"]["keycloak"].startswith("Keycloak")

    stampede = {row["peer"]: row for row in results["stampede"]}
    assert len(stampede) == 8
    assert all(row["errors"] == 0 and row["expired_served"] == 0 for row in stampede.values())
    assert stampede["keycloak_jwt_auth (redis)"]["token_requests"] == 1  # 2 processes, shared
    assert stampede["keycloak_jwt_auth (locmem)"]["token_requests"] == 2  # one per process
    assert (
        stampede["naive (token per call)"]["token_requests"]
        == stampede["naive (token per call)"]["calls"]
    )

    hot = {row["peer"]: row for row in results["hot_path"]}
    assert len(hot) == 8 and "floor" in hot["keycloak_jwt_auth (redis)"]
    assert {row["peer"] for row in results["expiry_boundary"]} == set(hot) - {
        "naive (token per call)"
    }
    assert [row["tcp_connections_opened"] for row in results["admin_api"]] == [0, 0]
    assert "### Stampede" in result.stdout and "### Admin API" in result.stdout
    signing = {row["algorithm"]: row for row in results["signing"]}
    assert {"HS256", "RS256 2048-bit", "RS256 3072-bit", "ES256", "EdDSA"} <= set(signing)
    assert all(row["ours_p50_us"] > 0 and row["calls"] == 20 for row in signing.values())
    assert "### Client assertion signing" in result.stdout
    check_async_step(results, result.stdout)
    check_writes_step(results, result.stdout)
    check_request_step(results, result.stdout)


def check_async_step(results: dict[str, Any], stdout: str) -> None:
    sizes = results["sizes"]
    hot = results["async_hot_path"]
    assert len(hot) == 6 and all(row["errors"] == 0 for row in hot)
    assert {row["calls"] for row in hot} == {sizes["async_hot_calls"]}

    stampede = results["async_stampede"]
    assert len(stampede) == 5 * len(sizes["stampede_tasks"])
    assert all(row["errors"] == 0 and row["token_requests"] >= 1 for row in stampede)
    ours = [row for row in stampede if row["peer"].startswith("keycloak_jwt_auth")]
    assert [(row["tasks"], row["token_requests"]) for row in ours] == [
        (tasks, 1) for _ in ("locmem", "redis") for tasks in sizes["stampede_tasks"]
    ]  # one token request for any number of tasks, in one process

    heartbeat = results["async_heartbeat"]
    assert heartbeat[0]["peer"] == "heartbeat alone (baseline)" and heartbeat[0]["calls"] == 0
    assert len(heartbeat) == 6 and all(row["beats"] > 0 and row["errors"] == 0 for row in heartbeat)

    admin = results["async_admin_api"]
    assert [row["calls"] for row in admin] == [sizes["async_admin_calls"]] * 2
    assert all(row["tasks"] == sizes["async_admin_tasks"] for row in admin)
    for title in ("Async hot path", "Async cold stampede", "Event loop heartbeat", "Async Admin"):
        assert f"### {title}" in stdout


def check_writes_step(results: dict[str, Any], stdout: str) -> None:
    sizes = results["sizes"]
    writes = results["admin_writes"]
    assert [row["mode"] for row in writes] == ["sync, one at a time"] * 2 + [
        f"async, {sizes['write_tasks']} tasks"
    ] * 2
    assert {row["calls"] for row in writes} == {2 * sizes["write_users"]}
    assert all(row["calls_per_second"] > 0 and row["tcp_connections_opened"] >= 1 for row in writes)
    assert {row["users_left_behind"] for row in writes} == {0}  # every user made was deleted
    assert "### Admin API writes" in stdout


def check_request_step(results: dict[str, Any], stdout: str) -> None:
    rows = results["admin_request"]
    assert [row["call"] for row in rows] == ["users()", "request()",
                                             "organization_members()", "request()"] * 2  # fmt: skip
    assert {row["calls"] for row in rows} == {results["sizes"]["request_calls"]}
    assert all(row["calls_per_second"] > 0 for row in rows)
    assert "### Admin API: request() against the typed call" in stdout
