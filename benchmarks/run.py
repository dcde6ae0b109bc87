"""Side-by-side benchmarks against the real Keycloak (and Redis): stampede, hot path, expiry
boundary, Admin API throughput, the async step (benchmarks/async_steps.py), the Admin API writes
(benchmarks/admin_writes.py), request() against the typed calls (benchmarks/admin_request.py),
the cost of signing an assertion per algorithm (benchmarks/signing.py), and what DPoP costs
(benchmarks/dpop.py). Run with
``scripts/bench.sh`` (it starts the servers).

    python -m benchmarks.run [--smoke] [--only async ...] [--out artifacts/benchmarks/results.json]

Token requests are counted at Keycloak: its CLIENT_LOGIN events for the client, in the run's
time window, read through the Admin API (``benchmarks.common.token_requests``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.admin_request import request_table, run_request, support_clients
from benchmarks.admin_writes import run_writes, writer_clients, writes_table
from benchmarks.async_steps import async_tables, run_async
from benchmarks.common import (
    LONG_CLIENT,
    REDIS_URL,
    SHORT_CLIENT,
    SHORT_LIFETIME,
    SMOKE,
    Sizes,
    admin_contenders,
    compare_admin,
    flush_redis,
    latency_summary,
    merged,
    run_workers,
    table,
    token_requests,
)
from benchmarks.dpop import dpop_clients, dpop_tables, run_dpop
from benchmarks.signing import signing_costs, signing_table
from support.peers import SERVER_URL, configure_django
from support.proxy import RecordingProxy
from support.realm import ROOT, realm_secret

CONTENDERS = [  # (worker peer name, cache URL)
    ("app", "locmemcache://"),
    ("app", REDIS_URL),
    ("requests-oauth2client", ""),
    ("requests-oauth2client-leeway3", ""),
    ("authlib", ""),
    ("authlib-leeway3", ""),
    ("python-keycloak", ""),
    ("naive", ""),
]


def stampede(peer: str, cache_url: str, sizes: Sizes) -> dict[str, Any]:
    flush_redis()
    duration = SHORT_LIFETIME * sizes.lifetimes
    start_at = time.time() + 3.0  # time for every worker to import and build its client
    reports, since, until = run_workers(
        peer,
        "loop",
        sizes.processes,
        client=SHORT_CLIENT,
        cache_url=cache_url,
        threads=sizes.threads,
        start_at=start_at,
        until=start_at + duration,
        interval=sizes.stampede_interval,
    )
    events = token_requests(SHORT_CLIENT, since, until + 0.5)
    windows = max(duration / SHORT_LIFETIME, 1e-9)
    return {
        **merged(reports),
        "token_requests": len(events),
        "token_requests_per_lifetime": round(len(events) / windows, 2),
        "workers": f"{sizes.processes}x{sizes.threads}",
        "seconds": duration,
    }


def hot_path(peer: str, cache_url: str, sizes: Sizes) -> dict[str, Any]:
    calls = sizes.naive_calls if peer == "naive" else sizes.hot_calls
    flush_redis()
    [report], _, _ = run_workers(
        peer, "hot", 1, client=LONG_CLIENT, cache_url=cache_url, calls=calls
    )
    result = {**merged([report]), "calls": calls}
    if report.get("floor_ns"):
        result["floor"] = latency_summary(report["floor_ns"])
    return result


def expiry_boundary(peer: str, cache_url: str, sizes: Sizes) -> dict[str, Any]:
    flush_redis()
    duration = SHORT_LIFETIME * sizes.lifetimes
    start_at = time.time() + 2.0
    [report], since, until = run_workers(
        peer,
        "loop",
        1,
        client=SHORT_CLIENT,
        cache_url=cache_url,
        threads=1,
        start_at=start_at,
        until=start_at + duration,
        interval=sizes.boundary_interval,
    )
    after_first = report["latencies_ns"][1:]  # the first call found no token: it had to wait
    return {
        **merged([report]),
        "token_requests": len(token_requests(SHORT_CLIENT, since, until + 0.5)),
        "max_after_first_us": max(after_first) / 1000 if after_first else float("nan"),
    }


def timed_calls(call: Any, calls: int) -> tuple[float, list[int]]:
    """(seconds spent, latencies in ns) of ``calls`` sequential calls."""
    latencies = []
    for _ in range(calls):
        t0 = time.perf_counter()
        assert len(call()) == 10
        latencies.append(round((time.perf_counter() - t0) * 1e9))
    return sum(latencies) / 1e9, latencies


def admin_throughput(
    sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy
) -> list[dict[str, Any]]:
    """``/api/users/``-equivalent calls, one after another: timed straight to Keycloak, then
    once more through a counting proxy to see how many TCP connections each client opens."""
    from keycloak_jwt_auth import KeycloakAdmin

    contenders, _ = admin_contenders(KeycloakAdmin, "get_users", ours, theirs)
    return compare_admin(contenders, timed_calls, sizes.admin_calls)


def machine() -> dict[str, Any]:
    version = (ROOT / ".keycloak").glob("keycloak-*/version.txt")
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keycloak": next((p.read_text().strip() for p in version), "unknown"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def report_tables(results: dict[str, Any]) -> str:
    stamp = results["stampede"]
    hot = results["hot_path"]
    base = next(r for r in hot if r["peer"] == "keycloak_jwt_auth (locmem)")["p50_us"]
    for row in hot:
        row["vs_app"] = f"{row['p50_us'] / base:.1f}x" if base else ""
    floors = [
        {"peer": f"raw cache.get ({r['peer'].split('(')[1].rstrip(')')})", **r["floor"]}
        for r in hot
        if "floor" in r
    ]
    return "\n".join(
        [
            table(
                "Stampede: token requests counted at Keycloak",
                stamp,
                [
                    ("contender", "peer"),
                    ("workers", "workers"),
                    ("seconds", "seconds"),
                    ("token requests", "token_requests"),
                    ("per 10 s lifetime", "token_requests_per_lifetime"),
                    ("calls", "calls"),
                    ("errors", "errors"),
                    ("expired served", "expired_served"),
                    ("p50 µs", "p50_us"),
                    ("p99 µs", "p99_us"),
                    ("max µs", "max_us"),
                ],
            ),
            table(
                "Hot path: one Authorization header with a warm token",
                hot + floors,
                [
                    ("contender", "peer"),
                    ("calls", "calls"),
                    ("p50 µs", "p50_us"),
                    ("p99 µs", "p99_us"),
                    ("max µs", "max_us"),
                    ("p50 vs app (locmem)", "vs_app"),
                ],
            ),
            table(
                "Expiry boundary: one caller every 5 ms across renewals (10 s tokens)",
                results["expiry_boundary"],
                [
                    ("contender", "peer"),
                    ("calls", "calls"),
                    ("token requests", "token_requests"),
                    ("p50 µs", "p50_us"),
                    ("p99 µs", "p99_us"),
                    ("max µs", "max_us"),
                    ("max after the first call µs", "max_after_first_us"),
                    ("errors", "errors"),
                ],
            ),
            table(
                "Admin API: /api/users/-equivalent (10 users a page), sequential",
                results["admin_api"],
                [
                    ("contender", "peer"),
                    ("calls", "calls"),
                    ("calls/s", "calls_per_second"),
                    ("p50 µs", "p50_us"),
                    ("p99 µs", "p99_us"),
                    ("TCP connections opened (proxied run)", "tcp_connections_opened"),
                ],
            ),
        ]
    )


def run_all(
    sizes: Sizes, only: set[str], ours: RecordingProxy, theirs: RecordingProxy
) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine(), "sizes": sizes.__dict__}
    if "async" in only:  # first: its counts must not depend on how many events the others left
        results.update(run_async(sizes, ours, theirs))
    steps = [
        ("stampede", "stampede", stampede, CONTENDERS),
        ("hot", "hot_path", hot_path, CONTENDERS),
        (
            "boundary",
            "expiry_boundary",
            expiry_boundary,
            [pc for pc in CONTENDERS if pc[0] != "naive"],
        ),
    ]
    for key, name, measure, contenders in steps:
        if key in only:
            results[name] = []
            for peer, cache_url in contenders:
                print(f"{name}: {peer} {cache_url}", file=sys.stderr, flush=True)
                results[name].append(measure(peer, cache_url, sizes))
    if "admin" in only:
        results["admin_api"] = admin_throughput(sizes, ours, theirs)
    if "writes" in only:
        print("admin writes: both, sync and async", file=sys.stderr, flush=True)
        results["admin_writes"] = run_writes(sizes, ours, theirs)
    if "request" in only:
        print("admin request(): against the typed calls", file=sys.stderr, flush=True)
        results["admin_request"] = run_request(sizes)
    if "signing" in only:
        print("signing", file=sys.stderr, flush=True)
        results["signing"] = signing_costs(sizes.signing_calls)
    if "dpop" in only:
        print("dpop: proofs and the Admin API", file=sys.stderr, flush=True)
        results["dpop"] = run_dpop(sizes.dpop_header_calls, sizes.dpop_admin_calls)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "artifacts" / "benchmarks" / "results.json"
    )
    everything = [
        *("stampede", "hot", "boundary", "admin", "async"),
        *("writes", "request", "signing", "dpop"),
    ]
    parser.add_argument("--only", nargs="*", choices=everything)
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else Sizes()
    only = set(args.only or everything)

    keycloak_port = int(SERVER_URL.rsplit(":", 1)[1])
    with (
        RecordingProxy("127.0.0.1", keycloak_port) as ours,
        RecordingProxy("127.0.0.1", keycloak_port) as theirs,
    ):
        configure_django(
            "locmemcache://",
            LONG_CLIENT,
            realm_secret(LONG_CLIENT),
            {
                "CLIENTS": {
                    "via-proxy": {"SERVER_URL": ours.url},
                    **writer_clients(ours),
                    **support_clients(),
                    **dpop_clients(),
                }
            },
        )
        results = run_all(sizes, only, ours, theirs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    if only >= {"stampede", "hot", "boundary", "admin"}:
        print(report_tables(results))
    if "async" in only:
        print(async_tables(results))
    if "writes" in only:
        print(writes_table(results))
    if "request" in only:
        print(request_table(results))
    if "signing" in only:
        print(signing_table(results["signing"]))
    if "dpop" in only:
        print(dpop_tables(results["dpop"]))
    print(f"results: {args.out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
