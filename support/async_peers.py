"""The async contenders, each reduced to one coroutine: produce the ``Authorization`` header value
for a request, fetching or renewing the token the way that library does in async code.

Each is built once per process, inside the running event loop (httpx clients belong to the loop
that uses them), then shared by the loop's tasks, as a module-level client of an ASGI app would be.
requests-oauth2client has no async API, and the naive baseline is the sync one's story again:
neither is here.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import jwt

from . import peers
from .peers import PROBE_URL, SERVER_URL, TOKEN_ENDPOINT, authlib_client, authlib_name


@dataclass
class AsyncPeer:
    name: str
    header: Callable[[], Awaitable[str]]
    note: str = ""
    fetches: Callable[[], int] | None = None  # token requests made so far (this app only)


def floor(cache_url: str, client_id: str, secret: str, **options: Any) -> AsyncPeer:
    """The floor: a bare ``await`` of a coroutine that returns a constant header (a JWT, so
    that the worker's observer reads it like the others)."""
    now = int(time.time())
    claims = {"jti": "floor", "iat": now, "exp": now + 24 * 3600}
    constant = f"Bearer {jwt.encode(claims, 'floor-' * 6, algorithm='HS256')}"

    async def header() -> str:
        return constant

    return AsyncPeer("floor: await of a constant coroutine", header)


def this_app(
    cache_url: str, client_id: str, secret: str, *, bare: bool = False, **options: Any
) -> AsyncPeer:
    """``f"Bearer {await aget_access_token()}"``, or with ``bare`` the awaited token alone."""
    sync = peers.this_app(cache_url, client_id, secret, **options)  # Django set up, named
    from keycloak_jwt_auth import aget_access_token

    async def header() -> str:
        return f"Bearer {await aget_access_token()}"  # the public API, as user code awaits it

    name = f"{sync.name}: await aget_access_token() alone" if bare else sync.name
    return AsyncPeer(name, aget_access_token if bare else header, fetches=sync.fetches)


# What the lock-seeded Authlib starts with: a token that expired long ago, so that the first
# header goes through its refresh lock (``ensure_active_token``) instead of ``fetch_token``.
EXPIRED_PLACEHOLDER = {"access_token": "placeholder", "token_type": "Bearer", "expires_at": 1}


def authlib(
    cache_url: str, client_id: str, secret: str, *, seeded: bool = False, **options: Any
) -> AsyncPeer:
    """Authlib's ``AsyncOAuth2Client`` with its registered ``ClientSecretJWT``. Its ``request``
    refuses to run without a token (``MissingTokenError``), so code calls ``fetch_token`` when
    it has none (the default row); once it has one, every request first awaits
    ``ensure_active_token``, which renews an expired token under an ``anyio.Lock``. ``seeded``
    starts with an expired placeholder token instead, so that even the first token goes
    through that lock."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    leeway = options.get("leeway")
    client = authlib_client(AsyncOAuth2Client, client_id, secret, leeway)
    if seeded:
        client.token = dict(EXPIRED_PLACEHOLDER)

    async def header() -> str:
        if client.token is None:
            await client.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials")
        await client.ensure_active_token(client.token)  # what its request() does first
        return str(client.token_auth.prepare(PROBE_URL, {}, "")[1]["Authorization"])

    name = authlib_name(leeway)
    return AsyncPeer(f"{name} (expired token seeded)" if seeded else name, header)


def python_keycloak(cache_url: str, client_id: str, secret: str, **options: Any) -> AsyncPeer:
    """python-keycloak's ``KeycloakOpenIDConnection`` through its async API: each ``a_raw_*``
    call first awaits ``a__refresh_if_required``, which fetches (``a_token``) when the token is
    missing or past 90 % of its lifetime. No lock."""
    connection = peers.python_keycloak_connection(SERVER_URL, client_id, secret, fetch_now=False)

    async def header() -> str:
        await connection.a__refresh_if_required()  # what each of its a_raw_* calls does first
        return str(connection.headers["Authorization"])

    return AsyncPeer("python-keycloak (async)", header, note="assertion fields added by hand")


ASYNC_PEERS: dict[str, Callable[..., AsyncPeer]] = {
    "floor": floor,
    "app": this_app,
    "app-token": functools.partial(this_app, bare=True),
    "authlib": authlib,
    "authlib-leeway3": functools.partial(authlib, leeway=3),
    "authlib-seeded": functools.partial(authlib, seeded=True),
    "python-keycloak": python_keycloak,
}
