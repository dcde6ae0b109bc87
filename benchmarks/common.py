"""What the benchmark steps share: clients, sizes, worker processes, summaries, tables."""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support.keycloak_events import EVENT_SETTLE_SECONDS
from support.peers import SERVER_URL, python_keycloak_connection
from support.proxy import RecordingProxy
from support.realm import realm_secret
from support.worker import start_worker

SHORT_CLIENT = "django-short-lived"  # 10 s tokens
LONG_CLIENT = "django-service"  # 300 s tokens
# 300 s tokens; no other step asks for them, so Keycloak counts the async cold starts alone
STAMPEDE_CLIENT = "django-no-roles"
SHORT_LIFETIME = 10.0
REDIS_URL = os.environ.get(
    "BENCH_REDIS_URL", f"redis://127.0.0.1:{os.environ.get('REDIS_PORT', '6390')}/0"
)


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
    # The async step (benchmarks/async_steps.py)
    async_hot_calls: int = 20_000
    stampede_tasks: tuple[int, ...] = (10, 1_000, 10_000)  # one cold start for each
    stampede_deadline: float = 60.0  # seconds; tasks still waiting then are "unfinished"
    heartbeat_tasks: int = 10  # tasks asking for a header every heartbeat_interval
    heartbeat_interval: float = 0.005
    async_admin_calls: int = 1_500
    async_admin_tasks: int = 50
    signing_calls: int = 2_000  # assertions per algorithm (benchmarks/signing.py)
    # The Admin API writes (benchmarks/admin_writes.py)
    write_users: int = 200  # created, then deleted, by each contender (a multiple of 4)
    write_tasks: int = 20  # concurrent tasks of the async contenders
    write_proxied_users: int = 40  # the round that counts TCP connections
    request_calls: int = 800  # per contender and endpoint (benchmarks/admin_request.py)
    dpop_header_calls: int = 5_000  # per row and mode (benchmarks/dpop.py)
    dpop_admin_calls: int = 600  # per contender


SMOKE = Sizes(
    processes=2,
    threads=2,
    lifetimes=0.3,
    hot_calls=300,
    naive_calls=20,
    admin_calls=10,
    async_hot_calls=300,
    stampede_tasks=(5, 20),
    async_admin_calls=150,
    signing_calls=20,
    write_users=8,
    write_tasks=5,
    request_calls=8,
    write_proxied_users=5,
    dpop_header_calls=20,
    dpop_admin_calls=9,
)


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
        wait_all(workers, f"{peer} {mode}")
        window_end = time.time()
        return [json.loads(out.read_text()) for out in outs], window_start, window_end


def token_requests(
    client_id: str, since: float, until: float, page: int = 10_000
) -> list[dict[str, Any]]:
    """The token requests Keycloak counted: the CLIENT_LOGIN events of ``client_id`` between two
    epoch times, as ``support.keycloak_events.token_events`` reads them, but asking Keycloak for
    that window only (``dateFrom``/``dateTo`` in epoch ms), page by page. A full run leaves tens
    of thousands of events for one client: the whole list outgrows the Admin API client's
    16 MiB body limit."""
    from keycloak_jwt_auth import KeycloakAdmin

    time.sleep(EVENT_SETTLE_SECONDS)
    low, high = math.floor(since * 1000), math.ceil(until * 1000)
    window = {"client": client_id, "type": "CLIENT_LOGIN", "dateFrom": low, "dateTo": high}
    events: list[dict[str, Any]] = []
    while True:
        batch = KeycloakAdmin().get("events", first=len(events), max=page, **window)
        events += batch
        if len(batch) < page:
            return [e for e in events if since * 1000 <= e["time"] <= until * 1000]


def wait_all(workers: list[subprocess.Popen[bytes]], what: str, seconds: float = 600) -> None:
    """Wait for every worker; when one fails or time runs out, end them all (none is left
    running behind the harness) and raise."""
    deadline = time.monotonic() + seconds
    try:
        for worker in workers:
            if worker.wait(timeout=max(0.0, deadline - time.monotonic())) != 0:
                raise RuntimeError(f"benchmark worker {what} exited {worker.returncode}")
    except BaseException:
        for worker in workers:
            worker.kill()  # our own children, by their handles
        raise


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


# --- Admin API throughput: the same comparison for the sync and the async clients ----------

Call = Callable[[], Any]
Timer = Callable[[Call, int], tuple[float, list[int]]]  # (call, calls) -> (seconds, ns each)


@dataclass(frozen=True)
class AdminContender:
    name: str
    proxy: RecordingProxy  # the counting proxy ``proxied`` goes through
    direct: Call  # one page of 10 users, straight to Keycloak
    proxied: Call  # the same through ``proxy``


def admin_contenders(
    our_admin: Callable[[str], Any], their_method: str, ours: RecordingProxy, theirs: RecordingProxy
) -> tuple[list[AdminContender], list[Any]]:
    """This app's ``our_admin(client).users`` and python-keycloak's ``KeycloakAdmin``
    ``their_method`` (``get_users`` or ``a_get_users``), on the same realm and client; and
    python-keycloak's two admins (to close)."""
    from keycloak import KeycloakAdmin as PeerAdmin

    secret = realm_secret(LONG_CLIENT)
    query = {"first": 0, "max": 10, "briefRepresentation": True}
    direct, proxied = (
        PeerAdmin(connection=python_keycloak_connection(url, LONG_CLIENT, secret))
        for url in (SERVER_URL, theirs.url)
    )

    def our(client: str) -> Call:
        return lambda: our_admin(client).users(first=0, max=10, brief=True)

    def their(admin: Any) -> Call:
        return lambda: getattr(admin, their_method)(query)

    name = getattr(our_admin, "__name__", "admin")
    return [
        AdminContender(f"keycloak_jwt_auth {name}.users", ours, our("default"), our("via-proxy")),
        AdminContender(
            f"python-keycloak KeycloakAdmin.{their_method}", theirs, their(direct), their(proxied)
        ),
    ], [direct, proxied]


def compare_admin(
    contenders: list[AdminContender], timer: Timer, calls: int, first_burst: int = 1
) -> list[dict[str, Any]]:
    """Time ``calls`` calls of each contender (three alternating rounds), then count the TCP
    connections each opens through its proxy."""
    spent, latencies = timed_rounds(contenders, timer, calls, rounds=3)
    return [
        {
            "peer": c.name,
            "calls": len(latencies[c.name]),
            "calls_per_second": round(len(latencies[c.name]) / spent[c.name], 1),
            **connections_opened(c, timer, first_burst, calls // 3),
            "token_requests": len(c.proxy.token_requests()),
            **latency_summary(latencies[c.name]),
        }
        for c in contenders
    ]


def timed_rounds(
    contenders: list[AdminContender], timer: Timer, calls: int, rounds: int
) -> tuple[dict[str, float], dict[str, list[int]]]:
    """Seconds spent and latencies of each contender's direct calls, in alternating rounds."""
    # Keycloak's JIT warms up over the first few hundred calls: warm it with both clients, then
    # alternate them in rounds, so that neither is measured on a colder server.
    for contender in contenders:
        timer(contender.direct, max(10, calls // rounds))
    spent = {c.name: 0.0 for c in contenders}
    latencies: dict[str, list[int]] = {c.name: [] for c in contenders}
    for round_ in range(rounds):
        for contender in contenders[:: 1 if round_ % 2 == 0 else -1]:
            seconds, more = timer(contender.direct, calls // rounds)
            spent[contender.name] += seconds
            latencies[contender.name] += more
    return spent, latencies


def connections_opened(
    contender: AdminContender, timer: Timer, first_burst: int, calls: int
) -> dict[str, int]:
    """TCP connections opened through the proxy by a first burst of calls (a cold pool), then
    by ``calls`` more right after it (a warm pool: httpx drops connections idle for 5 s)."""
    cold = contender.proxy.connections
    timer(contender.proxied, first_burst)
    warm = contender.proxy.connections
    timer(contender.proxied, calls)
    return {
        "tcp_connections_first_burst": warm - cold,
        "tcp_connections_opened": contender.proxy.connections - warm,
    }
