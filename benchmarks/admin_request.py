"""``request()`` against the typed call for the same endpoint (``python -m benchmarks.run --only
request``), in one run on the same realm:

- ``users(first=0, max=10, brief=True)`` against ``request("GET", "users", params=...)``;
- ``organization_members(org)`` against ``request("GET", f"organizations/{org}/members", ...)``;

each sync (one call after another, ``KeycloakAdmin``) and async (T concurrent tasks on one event
loop, ``AsyncKeycloakAdmin``), as the demo realm's support client. A warm-up of N/4 calls each,
then four alternating rounds of N/4 calls (ABBA): neither side meets a colder server. What
differs is only the client-side work (``request`` checks and re-quotes its path, reads any
answer); both send the same request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.common import Sizes, table
from support.realm import realm_secret

SUPPORT_CLIENT = "django-support"  # view-users, view-organizations...
ROUNDS = 4


def support_clients() -> dict[str, dict[str, Any]]:
    return {"support": {"CLIENT_ID": SUPPORT_CLIENT, "CLIENT_SECRET": realm_secret(SUPPORT_CLIENT)}}


def pairs(admin: Any, org_id: str) -> list[tuple[str, str, Callable[[], Any], Callable[[], Any]]]:
    """(endpoint, typed call's name, the typed call, the same through request())."""
    page = {"first": 0, "max": 10, "briefRepresentation": "true"}
    members = {"first": 0, "max": 100}
    return [
        ("GET users (10, brief)", "users",
         lambda: admin.users(first=0, max=10, brief=True),
         lambda: admin.request("GET", "users", params=page)),
        ("GET organizations/{id}/members", "organization_members",
         lambda: admin.organization_members(org_id),
         lambda: admin.request("GET", f"organizations/{org_id}/members", params=members)),
    ]  # fmt: skip


def timed(call: Callable[[], Any], count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - started)
    return latencies


def concurrently(
    loop: asyncio.AbstractEventLoop, tasks: int
) -> Callable[[Callable[[], Awaitable[Any]], int], list[float]]:
    """Runs ``count`` calls in ``tasks`` concurrent tasks; their latencies (the throughput is
    measured around it: latencies overlap)."""

    def run(call: Callable[[], Awaitable[Any]], count: int) -> list[float]:
        async def main() -> list[float]:
            left, latencies = [count], []

            async def worker() -> None:
                while left[0] > 0:
                    left[0] -= 1
                    started = time.perf_counter()
                    await call()
                    latencies.append(time.perf_counter() - started)

            await asyncio.gather(*(worker() for _ in range(tasks)))
            return latencies

        return loop.run_until_complete(main())

    return run


def measure(
    admin: Any, org_id: str, run: Callable[[Any, int], list[float]], sizes: Sizes, mode: str
) -> list[dict[str, Any]]:
    each = max(sizes.request_calls // ROUNDS, 1)
    rows = []
    for endpoint, typed_name, typed, raw in pairs(admin, org_id):
        contenders = {f"{typed_name}()": typed, "request()": raw}
        for call in contenders.values():
            run(call, each)  # warm-up
        spent: dict[str, list[float]] = {name: [] for name in contenders}
        seconds = dict.fromkeys(contenders, 0.0)
        for round_ in range(ROUNDS):
            for name in list(contenders)[:: 1 if round_ % 2 == 0 else -1]:
                started = time.perf_counter()
                spent[name] += run(contenders[name], each)
                seconds[name] += time.perf_counter() - started
        for name in contenders:
            latencies = sorted(spent[name])
            rows.append(
                {
                    "endpoint": endpoint,
                    "call": name,
                    "mode": mode,
                    "calls": len(latencies),
                    "calls_per_second": round(len(latencies) / seconds[name], 1),
                    "p50_us": round(statistics.median(latencies) * 1e6),
                    "p99_us": round(latencies[int(0.99 * (len(latencies) - 1))] * 1e6),
                }
            )
    return rows


def run_request(sizes: Sizes) -> list[dict[str, Any]]:
    from keycloak_jwt_auth import AsyncKeycloakAdmin, KeycloakAdmin
    from keycloak_jwt_auth.auths.httpx_auth import aclose_clients

    admin = KeycloakAdmin("support")
    [org] = admin.organizations(search="Acme Research")  # the demo realm's organization
    rows = measure(admin, org["id"], timed, sizes, "sync, one at a time")
    loop = asyncio.new_event_loop()
    try:
        run = concurrently(loop, sizes.write_tasks)
        mode = f"async, {sizes.write_tasks} tasks"
        rows += measure(AsyncKeycloakAdmin("support"), org["id"], run, sizes, mode)
    finally:
        loop.run_until_complete(aclose_clients())
        loop.close()
    return rows


def request_table(results: dict[str, Any]) -> str:
    return table(
        "Admin API: request() against the typed call (same endpoint, same realm, same run)",
        results["admin_request"],
        [
            ("endpoint", "endpoint"),
            ("call", "call"),
            ("mode", "mode"),
            ("calls", "calls"),
            ("calls/s", "calls_per_second"),
            ("p50 µs", "p50_us"),
            ("p99 µs", "p99_us"),
        ],
    )
