"""What DPoP costs, in one run against the real Keycloak: the headers of one call (a fresh proof
each, ES256 and EdDSA) next to a plain Bearer header, sync and async, with a warm token; and the
Admin API's throughput with and without DPoP (the demo realm's ``django-dpop`` requires it).

Each row times ``auth_headers`` / ``aauth_headers`` (the public API: token from memory, then
the headers), so "proof cost" is the row minus the Bearer row.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from benchmarks.common import latency_summary, table
from support.peers import SERVER_URL
from support.realm import realm_secret

DPOP_CLIENT_ID = "django-dpop"
PROBE_URL = f"{SERVER_URL}/admin/realms/demo/users"  # only named in the proofs: never sent
# (row label, client name): the default client is Bearer (django-service).
HEADER_ROWS = [("Bearer", "default"), ("DPoP ES256", "dpop-es256"), ("DPoP EdDSA", "dpop-eddsa")]


def dpop_clients() -> dict[str, dict[str, Any]]:
    """The named clients these benchmarks use, for the run's settings."""
    from keycloak_jwt_auth.keys import generate_private_key

    secret = realm_secret(DPOP_CLIENT_ID)
    return {
        name: {
            "CLIENT_ID": DPOP_CLIENT_ID,
            "CLIENT_SECRET": secret,
            "DPOP_KEY": generate_private_key(algorithm),
        }
        for name, algorithm in (("dpop-es256", "ES256"), ("dpop-eddsa", "EdDSA"))
    }


def median_us(latencies_ns: list[int]) -> float:
    return statistics.median(latencies_ns) / 1000


def sync_headers(client: str, calls: int) -> list[int]:
    from keycloak_jwt_auth import auth_headers

    auth_headers("GET", PROBE_URL, client=client)  # warm: the token is fetched here
    latencies = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        auth_headers("GET", PROBE_URL, client=client)
        latencies.append(time.perf_counter_ns() - started)
    return latencies


async def async_headers(client: str, calls: int) -> list[int]:
    from keycloak_jwt_auth import aauth_headers

    await aauth_headers("GET", PROBE_URL, client=client)
    latencies = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        await aauth_headers("GET", PROBE_URL, client=client)
        latencies.append(time.perf_counter_ns() - started)
    return latencies


def header_costs(calls: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for label, client in HEADER_ROWS:
        sync = sync_headers(client, calls)
        async_ = asyncio.run(async_headers(client, calls))
        rows.append(
            {
                "headers": label,
                "calls": calls,
                "sync_p50_us": median_us(sync),
                "async_p50_us": median_us(async_),
            }
        )
    bearer = rows[0]
    for row in rows:
        row["sync_proof_us"] = row["sync_p50_us"] - bearer["sync_p50_us"]
        row["async_proof_us"] = row["async_p50_us"] - bearer["async_p50_us"]
    return rows


def admin_throughput(calls: int, rounds: int = 3) -> list[dict[str, Any]]:
    """``users(first=0, max=10, brief=True)`` one after another, sync and async, Bearer and
    DPoP in alternating rounds (Keycloak's JIT warms up over the first calls)."""
    from keycloak_jwt_auth import AsyncKeycloakAdmin, KeycloakAdmin

    def sync_call(client: str) -> Callable[[], Any]:
        return lambda: KeycloakAdmin(client).users(first=0, max=10, brief=True)

    def async_call(client: str) -> Callable[[], Awaitable[Any]]:
        return lambda: AsyncKeycloakAdmin(client).users(first=0, max=10, brief=True)

    contenders = [
        (f"{kind} {label}", client, kind)
        for label, client in HEADER_ROWS[:2]
        for kind in ("KeycloakAdmin", "AsyncKeycloakAdmin")
    ]
    latencies: dict[str, list[int]] = {name: [] for name, _, _ in contenders}

    async def timed_async(call: Callable[[], Awaitable[Any]], count: int) -> list[int]:
        out = []
        for _ in range(count):
            started = time.perf_counter_ns()
            await call()
            out.append(time.perf_counter_ns() - started)
        return out

    def timed_sync(call: Callable[[], Any], count: int) -> list[int]:
        out = []
        for _ in range(count):
            started = time.perf_counter_ns()
            call()
            out.append(time.perf_counter_ns() - started)
        return out

    def measure(client: str, kind: str, count: int) -> list[int]:
        if kind == "KeycloakAdmin":
            return timed_sync(sync_call(client), count)
        return asyncio.run(timed_async(async_call(client), count))

    for _, client, kind in contenders:
        measure(client, kind, max(10, calls // rounds))  # warm-up
    for round_ in range(rounds):
        for name, client, kind in contenders[:: 1 if round_ % 2 == 0 else -1]:
            latencies[name] += measure(client, kind, calls // rounds)
    return [
        {
            "peer": name,
            "calls": len(latencies[name]),
            "calls_per_second": round(len(latencies[name]) / (sum(latencies[name]) / 1e9), 1),
            **latency_summary(latencies[name]),
        }
        for name, _, _ in contenders
    ]


def run_dpop(header_calls: int, admin_calls: int) -> dict[str, Any]:
    return {"headers": header_costs(header_calls), "admin": admin_throughput(admin_calls)}


def dpop_tables(results: dict[str, Any]) -> str:
    headers = table(
        "DPoP: the headers of one call with a warm token (auth_headers / aauth_headers, median)",
        results["headers"],
        [
            ("headers", "headers"),
            ("calls", "calls"),
            ("sync µs", "sync_p50_us"),
            ("async µs", "async_p50_us"),
            ("proof cost sync µs", "sync_proof_us"),
            ("proof cost async µs", "async_proof_us"),
        ],
    )
    admin = table(
        "DPoP: Admin API users (10 a page), sequential, Bearer vs DPoP (ES256)",
        results["admin"],
        [
            ("client", "peer"),
            ("calls", "calls"),
            ("calls/s", "calls_per_second"),
            ("p50 µs", "p50_us"),
            ("p99 µs", "p99_us"),
        ],
    )
    return f"{headers}\n{admin}"
