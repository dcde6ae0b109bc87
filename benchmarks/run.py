"""Side-by-side benchmarks against the real Keycloak (and Redis): stampede, hot path, expiry
boundary, Admin API throughput. Run with ``scripts/bench.sh`` (it starts the servers).

    python -m benchmarks.run [--smoke] [--out artifacts/benchmarks/results.json]

Token requests are counted at Keycloak: its CLIENT_LOGIN events for the client, in the run's
time window, read through the Admin API.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.keycloak_events import token_events
from support.peers import SERVER_URL, configure_django, python_keycloak_connection
from support.proxy import RecordingProxy
from support.realm import ROOT, realm_secret
from support.worker import start_worker

SHORT_CLIENT = "django-short-lived"  # 10 s tokens
LONG_CLIENT = "django-service"  # 300 s tokens
SHORT_LIFETIME = 10.0
REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6390')}/0"
)
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


@dataclass
class Sizes:
    processes: int = 4
    threads: int = 8
    lifetimes: float = 3.0  # stampede and boundary run this many token lifetimes
    stampede_interval: float = 0.02
    boundary_interval: float = 0.005
    hot_calls: int = 20_000
    naive_calls: int = 300
    admin_calls: int = 600


SMOKE = Sizes(processes=2, threads=2, lifetimes=0.3, hot_calls=300, naive_calls=20, admin_calls=10)


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return float(ordered[min(len(ordered) - 1, int(q * len(ordered)))])


def latency_summary(latencies_ns: list[int]) -> dict[str, float]:
    """p50, p99 and max in microseconds."""
    return {
        "p50_us": percentile(latencies_ns, 0.5) / 1000,
        "p99_us": percentile(latencies_ns, 0.99) / 1000,
        "max_us": max(latencies_ns) / 1000 if latencies_ns else float("nan"),
    }


def run_workers(
    peer: str, mode: str, processes: int, *, client: str, cache_url: str, **options: Any
) -> tuple[list[dict[str, Any]], float, float]:
    """Start ``processes`` workers; returns their reports and the [start, end] epoch window."""
    with tempfile.TemporaryDirectory() as folder:
        outs = [Path(folder) / f"{i}.json" for i in range(processes)]
        window_start = time.time()
        workers = [
            start_worker(
                peer,
                mode,
                out,
                client=client,
                cache_url=cache_url,
                env={"KEYCLOAK_SERVER_URL": SERVER_URL},
                **options,
            )
            for out in outs
        ]
        for worker in workers:
            if worker.wait(timeout=600) != 0:
                raise RuntimeError(f"benchmark worker {peer} {mode} exited {worker.returncode}")
        window_end = time.time()
        return [json.loads(out.read_text()) for out in outs], window_start, window_end


def merged(reports: list[dict[str, Any]]) -> dict[str, Any]:
    latencies = [x for r in reports for x in r["latencies_ns"]]
    return {
        "peer": reports[0]["peer"],
        "calls": sum(r["calls"] for r in reports),
        "errors": sum(r["errors"] for r in reports),
        "error_samples": sorted({s for r in reports for s in r["error_samples"]})[:3],
        "expired_served": sum(r["expired_served"] for r in reports),
        "distinct_tokens": len({t for r in reports for t in r["tokens"]}),
        **latency_summary(latencies),
    }


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


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
    events = token_events(SHORT_CLIENT, since, until + 0.5)
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
        "token_requests": len(token_events(SHORT_CLIENT, since, until + 0.5)),
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
    """``/api/users/``-equivalent calls: timed straight to Keycloak, then once more through a
    counting proxy to see how many TCP connections each client opens."""
    from keycloak import KeycloakAdmin as PeerAdmin

    from keycloak_jwt_auth import KeycloakAdmin

    secret = realm_secret(LONG_CLIENT)
    query = {"first": 0, "max": 10, "briefRepresentation": True}

    def peer_admin(url: str) -> Any:
        return PeerAdmin(connection=python_keycloak_connection(url, LONG_CLIENT, secret))

    direct_peer, proxied_peer = peer_admin(SERVER_URL), peer_admin(theirs.url)
    Call = Callable[[], Any]
    contenders: list[tuple[str, RecordingProxy, Call, Call]] = [
        (
            "keycloak_jwt_auth KeycloakAdmin.users",
            ours,
            lambda: KeycloakAdmin().users(first=0, max=10, brief=True),
            lambda: KeycloakAdmin("via-proxy").users(first=0, max=10, brief=True),
        ),
        (
            "python-keycloak KeycloakAdmin.get_users",
            theirs,
            lambda: direct_peer.get_users(query),
            lambda: proxied_peer.get_users(query),
        ),
    ]
    # Keycloak's JIT warms up over the first few hundred calls: warm it with both clients, then
    # alternate them in rounds, so that neither is measured on a colder server.
    for _, _, direct, proxied in contenders:
        timed_calls(direct, max(10, sizes.admin_calls // 3))
        proxied()
    rounds, spent = 3, {name: 0.0 for name, *_ in contenders}
    latencies: dict[str, list[int]] = {name: [] for name, *_ in contenders}
    for round_ in range(rounds):
        for name, _, direct, _ in contenders[:: 1 if round_ % 2 == 0 else -1]:
            seconds, more = timed_calls(direct, sizes.admin_calls // rounds)
            spent[name] += seconds
            latencies[name] += more
    results = []
    for name, proxy, _, proxied in contenders:
        before = proxy.connections
        timed_calls(proxied, sizes.admin_calls // rounds)
        results.append(
            {
                "peer": name,
                "calls": len(latencies[name]),
                "calls_per_second": round(len(latencies[name]) / spent[name], 1),
                "tcp_connections_opened": proxy.connections - before,
                "token_requests": len(proxy.token_requests()),
                **latency_summary(latencies[name]),
            }
        )
    return results


def machine() -> dict[str, Any]:
    version = (ROOT / ".keycloak").glob("keycloak-*/version.txt")
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "keycloak": next((p.read_text().strip() for p in version), "unknown"),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def fmt(value: float) -> str:
    if value < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def table(title: str, rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(h for h, _ in columns) + " |",
        "|" + "---|" * len(columns),
    ]
    for row in rows:
        cells = []
        for _, key in columns:
            value = row.get(key, "")
            cells.append(fmt(value) if isinstance(value, float) else str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the harness")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "artifacts" / "benchmarks" / "results.json"
    )
    parser.add_argument("--only", nargs="*", choices=["stampede", "hot", "boundary", "admin"])
    args = parser.parse_args(argv)
    sizes = SMOKE if args.smoke else Sizes()
    everything = {"stampede", "hot", "boundary", "admin"}
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
            {"CLIENTS": {"via-proxy": {"SERVER_URL": ours.url}}},
        )
        results = run_all(sizes, only, ours, theirs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    if only == everything:
        print(report_tables(results))
    print(f"results: {args.out}", file=sys.stderr)
    return results


if __name__ == "__main__":
    main()
