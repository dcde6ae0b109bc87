"""Async HTTP with httpx: the transport policy of ``transport.py`` for ``AsyncKeycloakAdmin``,
its pooled clients, and ``HttpxServiceAccountAuth``.

Imported only when async HTTP is used: without httpx (the ``async`` extra) it raises a
``ConfigurationError`` that says what to install.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from typing import Any

from keycloak_jwt_auth.exceptions import ConfigurationError, KeycloakJWTAuthError
from keycloak_jwt_auth.settings import (
    DEFAULT_CLIENT,
    ClientConfig,
    Timeout,
    get_client_config,
)
from keycloak_jwt_auth.tokens.manager import TokenManager, get_token_manager

from .transport import Refused, Unavailable, judge, tls_error, url_origin

try:
    import httpx
except ImportError:  # pragma: no cover (the tests run with the extra installed)
    raise ConfigurationError(
        "keycloak_jwt_auth's async HTTP needs httpx: pip install keycloak-jwt-auth[async]"
    ) from None


async def aexchange(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    config: ClientConfig,
    unavailable: Unavailable,
    refused: Refused,
    limit: int,
    **kwargs: Any,
) -> httpx.Response:
    """``transport.exchange`` for async code: the client's timeout and TLS verification (set
    on the pooled client), no redirect, the body capped and judged the same way."""
    failure: KeycloakJWTAuthError | None
    try:
        async with client.stream(
            method, url, timeout=httpx_timeout(config.timeout), follow_redirects=False, **kwargs
        ) as response:
            raw = await _read_at_most(response.aiter_raw(), limit)
    except httpx.TimeoutException:
        failure = unavailable("timed out")
    except httpx.TransportError as exc:
        cause = _cause(exc)
        tls = isinstance(exc, httpx.ConnectError) and isinstance(cause, ssl.SSLError)
        failure = tls_error(url, str(cause)) if tls else unavailable(str(cause) or repr(cause))
    else:
        response._content, failure = judge(
            response.status_code, response.headers, raw, refused=refused, limit=limit
        )
        if failure is None:
            return response
    raise failure  # outside the except blocks: no httpx exception in its chain


async def _read_at_most(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    read, size = [], 0
    async for chunk in chunks:
        read.append(chunk)
        size += len(chunk)
        if size > limit:
            break
    return b"".join(read)


def _cause(exc: BaseException) -> BaseException:
    """The innermost exception: 'Connection refused', an SSL verification error..."""
    for _ in range(20):  # a chain is short; a cycle must not hang us
        inner = exc.__cause__ or exc.__context__
        if inner is None:
            break
        exc = inner
    return exc


def httpx_timeout(timeout: Timeout) -> httpx.Timeout:
    connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    return httpx.Timeout(read, connect=connect)


def json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, RecursionError):
        return None


# --- one pooled client per Keycloak client, event loop and process --------------------------

_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, int], httpx.AsyncClient]
] = weakref.WeakKeyDictionary()


def async_client(client: str) -> httpx.AsyncClient:
    """This loop's pooled client for ``client`` (a forked child or another loop gets its own:
    connections belong to the loop and the process that opened them)."""
    mine = _clients.setdefault(asyncio.get_running_loop(), {})
    key = (client, os.getpid())
    if key not in mine:
        config = get_client_config(client)
        mine[key] = httpx.AsyncClient(
            auth=HttpxServiceAccountAuth(client),
            verify=config.verify,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )
    return mine[key]


async def aclose_clients() -> None:
    """Close this event loop's pooled clients (e.g. in an ASGI lifespan's shutdown)."""
    for http in _clients.pop(asyncio.get_running_loop(), {}).values():
        await http.aclose()


# --- the auth --------------------------------------------------------------------------------


class HttpxServiceAccountAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` for ``httpx.Client`` and ``httpx.AsyncClient``, with
    the rule of ``ServiceAccountAuth``: after a 401 from where the token was sent (same scheme,
    host and port), drop that token and retry once with a fresh one."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"HttpxServiceAccountAuth(client={self.client!r})"

    @property
    def manager(self) -> TokenManager:
        return get_token_manager(self.client)

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = self.manager.get_token().authorization
        response = yield request
        if self._refused_here(request, response) and self.manager.invalidate(_bearer(request)):
            request.headers["Authorization"] = self.manager.get_token().authorization
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = (await self.manager.aget_token()).authorization
        response = yield request
        if self._refused_here(request, response) and await asyncio.to_thread(
            self.manager.invalidate,
            _bearer(request),  # the shared cache: not on the loop
        ):
            request.headers["Authorization"] = (await self.manager.aget_token()).authorization
            yield request

    @staticmethod
    def _refused_here(request: httpx.Request, response: httpx.Response) -> bool:
        """A 401 from where the token was sent, to the request that carried it."""
        return (
            response.status_code == 401
            and url_origin(str(response.request.url)) == url_origin(str(request.url))
            and response.request.headers.get("Authorization") == request.headers["Authorization"]
        )


def _bearer(request: httpx.Request) -> str:
    return request.headers["Authorization"].removeprefix("Bearer ")
