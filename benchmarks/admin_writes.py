"""The Admin API writes side by side (``python -m benchmarks.run --only writes``): create N users,
then delete them, on the same realm in the same run:

- sync, one call after another: ``KeycloakAdmin.create_user``/``delete_user`` against
  python-keycloak's ``KeycloakAdmin.create_user``/``delete_user``;
- async, T concurrent tasks on one event loop: ``AsyncKeycloakAdmin`` against python-keycloak's
  ``a_create_user``/``a_delete_user``.

Both use the demo realm's manage-users client (python-keycloak with the same client_secret_jwt
assertions, see ``support.peers``). Each contender warms up with N/4 users, runs four
alternating rounds of N/4 users (neither is measured on a colder server), then a proxied round
counts the TCP connections it opens from a cold pool. Every user made is deleted, also when a
round fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from benchmarks.common import Sizes, table
from keycloak_jwt_auth.admin import UserRepresentation
from support.peers import SERVER_URL, python_keycloak_connection
from support.proxy import RecordingProxy
from support.realm import realm_secret

WRITE_CLIENT = "django-provisioning"  # manage-users
PREFIX = "bench-write"
ROUNDS = 4


def writer_clients(ours: RecordingProxy) -> dict[str, dict[str, Any]]:
    """The named clients this step uses: direct, and through the counting proxy."""
    writer = {"CLIENT_ID": WRITE_CLIENT, "CLIENT_SECRET": realm_secret(WRITE_CLIENT)}
    return {"writer": writer, "writer-via-proxy": {**writer, "SERVER_URL": ours.url}}


@dataclass(frozen=True)
class Writer:
    """One contender: ``create(username) -> id`` and ``delete(id)``, sync or coroutines."""

    name: str
    create: Callable[[str], Any]
    delete: Callable[[str], Any]


# (operation, items) -> (seconds, results): one after another, or in concurrent tasks
Runner = Callable[[Callable[[str], Any], list[str]], tuple[float, list[Any]]]


def one_by_one(operation: Callable[[str], Any], items: list[str]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    results = [operation(item) for item in items]
    return time.perf_counter() - started, results


def concurrently(loop: asyncio.AbstractEventLoop, tasks: int) -> Runner:
    def run(
        operation: Callable[[str], Awaitable[Any]], items: list[str]
    ) -> tuple[float, list[Any]]:
        async def main() -> tuple[float, list[Any]]:
            queue, results = list(items), []

            async def worker() -> None:
                while queue:
                    results.append(await operation(queue.pop()))

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(tasks)))
            return time.perf_counter() - started, results

        return loop.run_until_complete(main())

    return run


def usernames(count: int) -> list[str]:
    run_id = uuid.uuid4().hex[:8]
    return [f"{PREFIX}-{run_id}-{i:04d}" for i in range(count)]


def create_then_delete(writer: Writer, count: int, run: Runner) -> tuple[float, float]:
    """Seconds to create ``count`` users, and to delete them."""
    creating, ids = run(writer.create, usernames(count))
    deleting, _ = run(writer.delete, ids)
    return creating, deleting


def measure(
    pairs: list[tuple[Writer, Writer, RecordingProxy]], sizes: Sizes, run: Runner, mode: str
) -> list[dict[str, Any]]:
    """Each (direct, proxied, proxy) contender: a warm-up, then ``ROUNDS`` timed rounds in
    alternating order (ABBA...), then the proxied round that counts connections."""
    each = max(sizes.write_users // ROUNDS, 1)
    for direct, _, _ in pairs:
        create_then_delete(direct, each, run)  # warm-up
    spent = {direct.name: [0.0, 0.0] for direct, _, _ in pairs}
    for round_ in range(ROUNDS):
        for direct, _, _ in pairs[:: 1 if round_ % 2 == 0 else -1]:
            creating, deleting = create_then_delete(direct, each, run)
            spent[direct.name][0] += creating
            spent[direct.name][1] += deleting
    users = ROUNDS * each
    rows = []
    for direct, proxied, proxy in pairs:
        before, tokens_before = proxy.connections, len(proxy.token_requests())
        create_then_delete(proxied, sizes.write_proxied_users, run)
        creating, deleting = spent[direct.name]
        rows.append(
            {
                "peer": direct.name,
                "mode": mode,
                "users": users,
                "calls": 2 * users,
                "creates_per_second": round(users / creating, 1),
                "deletes_per_second": round(users / deleting, 1),
                "calls_per_second": round(2 * users / (creating + deleting), 1),
                "proxied_users": sizes.write_proxied_users,
                "tcp_connections_opened": proxy.connections - before,
                "token_requests": len(proxy.token_requests()) - tokens_before,
            }
        )
    return rows


def python_keycloak(url: str) -> Any:
    from keycloak import KeycloakAdmin as PeerAdmin

    connection = python_keycloak_connection(url, WRITE_CLIENT, realm_secret(WRITE_CLIENT))
    return PeerAdmin(connection=connection)


def payload(username: str) -> UserRepresentation:
    return {"username": username, "enabled": True}


def writer(name: str, admin: Any, create: str, delete: str) -> Writer:
    """``admin``'s methods ``create`` (given a representation) and ``delete`` as a contender."""
    make = getattr(admin, create)
    return Writer(name, lambda username: make(payload(username)), getattr(admin, delete))


def sync_rows(sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy) -> list[dict[str, Any]]:
    from keycloak_jwt_auth import KeycloakAdmin

    our, their = "keycloak_jwt_auth KeycloakAdmin", "python-keycloak KeycloakAdmin"
    methods = ("create_user", "delete_user")
    pairs = [
        (
            writer(f"{our}.create_user/delete_user", KeycloakAdmin("writer"), *methods),
            writer(our, KeycloakAdmin("writer-via-proxy"), *methods),
            ours,
        ),
        (
            writer(f"{their}.create_user/delete_user", python_keycloak(SERVER_URL), *methods),
            writer(their, python_keycloak(theirs.url), *methods),
            theirs,
        ),
    ]
    return measure(pairs, sizes, one_by_one, "sync, one at a time")


def async_rows(sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy) -> list[dict[str, Any]]:
    from keycloak_jwt_auth import AsyncKeycloakAdmin
    from keycloak_jwt_auth.auths.httpx_auth import aclose_clients

    our, their = "keycloak_jwt_auth AsyncKeycloakAdmin", "python-keycloak KeycloakAdmin"
    their_admins = [python_keycloak(SERVER_URL), python_keycloak(theirs.url)]
    pairs = [
        (
            writer(f"{our}.create_user/delete_user", AsyncKeycloakAdmin("writer"),
                   "create_user", "delete_user"),
            writer(our, AsyncKeycloakAdmin("writer-via-proxy"), "create_user", "delete_user"),
            ours,
        ),
        (
            writer(f"{their}.a_create_user/a_delete_user", their_admins[0],
                   "a_create_user", "a_delete_user"),
            writer(their, their_admins[1], "a_create_user", "a_delete_user"),
            theirs,
        ),
    ]  # fmt: skip
    loop = asyncio.new_event_loop()
    try:
        run = concurrently(loop, sizes.write_tasks)
        return measure(pairs, sizes, run, f"async, {sizes.write_tasks} tasks")
    finally:
        loop.run_until_complete(aclose_clients())
        for admin in their_admins:
            loop.run_until_complete(admin.connection.aclose())
        loop.close()


@contextlib.contextmanager
def leaving_no_user() -> Iterator[list[int]]:
    """Deletes every user this step made, whatever happened; yields [how many were left]."""
    left: list[int] = []
    try:
        yield left
    finally:
        from keycloak_jwt_auth import KeycloakAdmin

        admin = KeycloakAdmin("writer")
        leftovers = list(admin.iter_users(search=PREFIX, page_size=500))
        for user in leftovers:
            admin.delete_user(user["id"])
        left.append(len(leftovers))


def run_writes(sizes: Sizes, ours: RecordingProxy, theirs: RecordingProxy) -> list[dict[str, Any]]:
    with leaving_no_user() as left:
        rows = sync_rows(sizes, ours, theirs) + async_rows(sizes, ours, theirs)
    for row in rows:
        row["users_left_behind"] = left[0]
    return rows


def writes_table(results: dict[str, Any]) -> str:
    return table(
        "Admin API writes: create, then delete, users (same realm, same run)",
        results["admin_writes"],
        [
            ("contender", "peer"),
            ("mode", "mode"),
            ("users", "users"),
            ("creates/s", "creates_per_second"),
            ("deletes/s", "deletes_per_second"),
            ("calls/s", "calls_per_second"),
            ("TCP connections opened (proxied round, cold pool)", "tcp_connections_opened"),
            ("users in the proxied round", "proxied_users"),
            ("token requests in it", "token_requests"),
        ],
    )
