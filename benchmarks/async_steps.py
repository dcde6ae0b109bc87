"""The async step of the benchmarks (``python -m benchmarks.run --only async``), side by side
with Authlib's ``AsyncOAuth2Client`` and python-keycloak's ``a_*`` API:

- hot path: ``await aget_access_token()`` against a bare ``await`` of a constant coroutine;
- cold stampede: N tasks of one process ask at the same instant, no token yet; token requests
  counted at Keycloak (its CLIENT_LOGIN events);
- heartbeat: the largest gap of a 1 ms heartbeat task while tasks ask for headers across
  renewals of 10 s tokens, beside the heartbeat alone;
- Admin API: ``AsyncKeycloakAdmin.users`` against ``KeycloakAdmin.a_get_users`` with 50
  concurrent tasks, TCP connections counted by a proxy.

Each contender but the Admin API runs in a worker process of its own (``support.async_worker``).
"""

from __future__ import annotations

import asyncio
import bisect
import sys
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import (
    LONG_CLIENT,
    REDIS_URL,
    SHORT_CLIENT,
    SHORT_LIFETIME,
    STAMPEDE_CLIENT,
    Call,
    Sizes,
    admin_contenders,
    compare_admin,
    flush_redis,
    merged,
    percentile,
    run_workers,
    table,
    token_requests,
)
from support.proxy import RecordingProxy

ASYNC_WORKER = "support.async_worker"
LOCMEM = "locmemcache://"
HOT = [
    ("floor", ""),
    ("app-token", LOCMEM),
    ("app", LOCMEM),
    ("app", REDIS_URL),
    ("authlib", ""),
    ("python-keycloak", ""),
]
STAMPEDE = [
    ("app", LOCMEM),
    ("app", REDIS_URL),
    ("authlib", ""),
    ("authlib-seeded", ""),
    ("python-keycloak", ""),
]
# Authlib at leeway 3 s only: its default 60 s leeway never finds a 10 s token fresh, so every
# call would fetch one (the sync expiry-boundary table shows it), which measures token requests,
# not the loop.
HEARTBEAT = [("app", LOCMEM), ("app", REDIS_URL), ("authlib-leeway3", ""), ("python-keycloak", "")]
NEAR_TOKEN_REQUEST = 0.05  # seconds: a beat this close to a token request may be its doing


def one_worker(peer: str, mode: str, client: str, cache_url: str, **options: Any) -> Any:
    """The report of one async worker process, and its [start, end] epoch window."""
    flush_redis()  # every run starts cold in Redis too
    [report], since, until = run_workers(
        peer, mode, 1, client=client, cache_url=cache_url, module=ASYNC_WORKER, **options
    )
    return report, since, until


def hot_path(peer: str, cache_url: str, sizes: Sizes) -> dict[str, Any]:
    report, _, _ = one_worker(peer, "hot", LONG_CLIENT, cache_url, calls=sizes.async_hot_calls)
    return merged([report])


def cold_stampede(peer: str, cache_url: str, tasks: int, deadline: float) -> dict[str, Any]:
    report, since, until = one_worker(
        peer, "stampede", STAMPEDE_CLIENT, cache_url, tasks=tasks, deadline=deadline
    )
    return {
        **merged([report]),
        "tasks": tasks,
        "unfinished": report["unfinished"],
        "seconds": report["seconds"],
        "token_requests": len(token_requests(STAMPEDE_CLIENT, since, until + 0.5)),
    }


def heartbeat(peer: str, cache_url: str, sizes: Sizes, tasks: int) -> dict[str, Any]:
    duration = SHORT_LIFETIME * sizes.lifetimes
    start_at = time.time() + 3.0  # time to import, build the client and warm it
    until = start_at + duration
    report, _, _ = one_worker(
        peer,
        "heartbeat",
        SHORT_CLIENT,
        cache_url,
        tasks=tasks,
        start_at=start_at,
        until=until,
        interval=sizes.heartbeat_interval,
    )
    requested = [e["time"] / 1000 for e in token_requests(SHORT_CLIENT, start_at, until + 0.5)]
    return {
        **merged([report]),
        "tasks": tasks,
        "token_requests": len(requested),
        **beat_summary(report["beats"], sorted(requested)),
    }


def beat_summary(beats: list[list[float]], requested: list[float]) -> dict[str, Any]:
    """The heartbeat's gaps in ms: p50, p99, max; and the largest gap that overlaps a token
    request (within ``NEAR_TOKEN_REQUEST``), and the largest that does not."""
    gaps = [int(gap) for _, gap in beats]
    near, elsewhere = [0], [0]
    for at, gap in beats:
        low = bisect.bisect_left(requested, at - gap / 1e9 - NEAR_TOKEN_REQUEST)
        hit = low < len(requested) and requested[low] <= at + NEAR_TOKEN_REQUEST
        (near if hit else elsewhere).append(int(gap))
    return {
        "beats": len(gaps),
        "beat_p50_ms": percentile(gaps, 0.5) / 1e6,
        "beat_p99_ms": percentile(gaps, 0.99) / 1e6,
        "beat_max_ms": max(gaps, default=0) / 1e6,
        "beat_max_near_token_ms": max(near) / 1e6,
        "beat_max_elsewhere_ms": max(elsewhere) / 1e6,
    }


def heartbeat_rows(sizes: Sizes) -> list[dict[str, Any]]:
    """The heartbeat alone, with tasks awaiting a constant (the floor), then with the tasks of
    each contender."""
    tasks = sizes.heartbeat_tasks
    progress("heartbeat", "baselines", "")
    rows = [
        {**heartbeat("floor", "", sizes, 0), "peer": "heartbeat alone (baseline)"},
        {**heartbeat("floor", "", sizes, tasks), "peer": "floor: tasks await a constant"},
    ]
    for peer, cache_url in HEARTBEAT:
        progress("heartbeat", peer, cache_url)
        rows.append(heartbeat(peer, cache_url, sizes, sizes.heartbeat_tasks))
    return rows


async def concurrently(call: Call, calls: int, tasks: int) -> tuple[float, list[int]]:
    """(seconds, latencies in ns) of ``calls`` awaited calls, ``tasks`` of them at a time."""
    pending, latencies = iter(range(calls)), []

    async def worker() -> None:
        for _ in pending:  # shared: each task takes the next call
            started = time.perf_counter()
            assert len(await call()) == 10
            latencies.append(round((time.perf_counter() - started) * 1e9))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return time.perf_counter() - started, latencies


def admin_throughput(
    sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy
) -> list[dict[str, Any]]:
    """``AsyncKeycloakAdmin.users`` against python-keycloak's ``a_get_users``, with
    ``async_admin_tasks`` tasks at once, all on one event loop (pooled connections belong to
    the loop that opened them)."""
    from keycloak_jwt_auth import AsyncKeycloakAdmin
    from keycloak_jwt_auth.auths.httpx_auth import aclose_clients

    tasks = sizes.async_admin_tasks
    tokens_before = [len(proxy.token_requests()) for proxy in (ours, theirs)]
    contenders, their_admins = admin_contenders(AsyncKeycloakAdmin, "a_get_users", ours, theirs)
    loop = asyncio.new_event_loop()

    def timer(call: Call, calls: int) -> tuple[float, list[int]]:
        return loop.run_until_complete(concurrently(call, calls, tasks))

    try:
        rows = compare_admin(contenders, timer, sizes.async_admin_calls, first_burst=tasks)
    finally:
        loop.run_until_complete(aclose_clients())
        for admin in their_admins:
            loop.run_until_complete(admin.connection.aclose())
        loop.close()
    for row, proxy, before in zip(rows, (ours, theirs), tokens_before, strict=True):
        row.update(tasks=tasks, token_requests=len(proxy.token_requests()) - before)
    return rows


def progress(step: str, peer: str, cache_url: str, extra: str = "") -> None:
    print(f"async {step}: {peer} {cache_url} {extra}".rstrip(), file=sys.stderr, flush=True)


def run_async(sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy) -> dict[str, Any]:
    results: dict[str, Any] = {"async_hot_path": [], "async_stampede": []}
    for peer, cache_url in HOT:
        progress("hot path", peer, cache_url)
        results["async_hot_path"].append(hot_path(peer, cache_url, sizes))
    for peer, cache_url in STAMPEDE:
        for tasks in sizes.stampede_tasks:
            progress("stampede", peer, cache_url, f"N={tasks}")
            row = cold_stampede(peer, cache_url, tasks, sizes.stampede_deadline)
            results["async_stampede"].append(row)
    results["async_heartbeat"] = heartbeat_rows(sizes)
    progress("admin", "both", "")
    results["async_admin_api"] = admin_throughput(sizes, ours, theirs)
    return results


# --- tables ------------------------------------------------------------------------------------

Columns = list[tuple[str, str]]


TABLES: list[tuple[str, str, Columns]] = [
    (
        "Async hot path: one awaited Authorization header with a warm token",
        "async_hot_path",
        [
            ("contender", "peer"),
            ("calls", "calls"),
            ("p50 µs", "p50_us"),
            ("p99 µs", "p99_us"),
            ("max µs", "max_us"),
            ("p50 vs floor", "vs_floor"),
        ],
    ),
    (
        "Async cold stampede: N tasks ask at once, no token yet (token requests at Keycloak)",
        "async_stampede",
        [
            ("contender", "peer"),
            ("tasks", "tasks"),
            ("token requests", "token_requests"),
            ("distinct tokens", "distinct_tokens"),
            ("errors", "errors"),
            ("unfinished at the deadline", "unfinished"),
            ("seconds until every task was done", "seconds"),
            ("p50 µs", "p50_us"),
            ("max µs", "max_us"),
        ],
    ),
    (
        "Event loop heartbeat (1 ms sleep) while tasks ask every 5 ms, across 10 s token renewals",
        "async_heartbeat",
        [
            ("contender", "peer"),
            ("tasks", "tasks"),
            ("beats", "beats"),
            ("gap p50 ms", "beat_p50_ms"),
            ("gap p99 ms", "beat_p99_ms"),
            ("largest gap ms", "beat_max_ms"),
            ("largest gap near a token request ms", "beat_max_near_token_ms"),
            ("token requests", "token_requests"),
            ("calls", "calls"),
            ("errors", "errors"),
            ("call p99 µs", "p99_us"),
            ("call max µs", "max_us"),
        ],
    ),
    (
        "Async Admin API: /api/users/-equivalent (10 users a page), concurrent tasks",
        "async_admin_api",
        [
            ("contender", "peer"),
            ("tasks", "tasks"),
            ("calls", "calls"),
            ("calls/s", "calls_per_second"),
            ("p50 µs", "p50_us"),
            ("p99 µs", "p99_us"),
            ("TCP connections: first burst (cold pool)", "tcp_connections_first_burst"),
            ("TCP connections: next round (warm pool)", "tcp_connections_opened"),
            ("token requests (this step)", "token_requests"),
        ],
    ),
]


def ratio_to(rows: list[dict[str, Any]], base_peer: Callable[[str], bool]) -> None:
    base = next((r["p50_us"] for r in rows if base_peer(r["peer"])), 0.0)
    for row in rows:
        row["vs_floor"] = f"{row['p50_us'] / base:.1f}x" if base else ""


def async_tables(results: dict[str, Any]) -> str:
    ratio_to(results["async_hot_path"], lambda peer: peer.startswith("floor"))
    return "\n".join(
        table(title, results[key], columns) for title, key, columns in TABLES if key in results
    )
