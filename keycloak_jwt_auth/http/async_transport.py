"""Async HTTP with httpx: the policy of ``transport.py`` (timeouts, TLS, no redirects, size caps,
the same errors) for ``AsyncKeycloakAdmin``, and ``arun_flow``, the async driver of a sans-IO flow.

Imported only when async HTTP is used: without httpx (the ``async`` extra) it raises a
``ConfigurationError`` that says what to install.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Callable, Generator
from typing import Any, TypeVar

from keycloak_jwt_auth.exceptions import ConfigurationError, KeycloakJWTAuthError
from keycloak_jwt_auth.settings import ClientConfig, Timeout

from .steps import Pause, Pump, Reply, Send
from .transport import (
    REFUSED_BODY_LIMIT,
    Refused,
    Unavailable,
    judge,
    read_at_most,
    refused_body,
    tls_error,
)

try:
    import httpx
except ImportError:  # pragma: no cover (the tests run with the extra installed)
    raise ConfigurationError(
        "keycloak_jwt_auth's async HTTP needs httpx: pip install 'keycloak-jwt-auth[async]'"
    ) from None


T = TypeVar("T")


async def arun_flow(
    flow: Generator[Send | Pause, Reply | None, T],
    client: httpx.AsyncClient,
    config: ClientConfig,
    *,
    on_pause: Callable[[], None] | None = None,
) -> T:
    """``transport.run_flow`` with httpx: the same flow, its pauses awaited instead of slept."""
    pump = Pump(flow, on_pause)
    for step in pump:
        with pump.answering():
            if isinstance(step, Pause):
                await asyncio.sleep(step.seconds)
            else:
                answer = await aexchange(
                    client, step.method, step.url, config=config, **step.options()
                )
                pump.reply = Reply(
                    answer.status_code, answer.headers, answer.content, str(answer.url)
                )
    return pump.result


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


def read_refused(response: httpx.Response) -> None:
    """``transport.read_refused`` for httpx (sync): httpx reads a response's whole body,
    inflated, before an auth flow's retry; a body read here (capped) is the one it keeps."""
    try:
        raw = read_at_most(response.iter_raw(), REFUSED_BODY_LIMIT)
    except httpx.HTTPError:
        raw = b""
    finally:
        response.close()
    response._content = refused_body(response.status_code, response.headers, raw)


async def aread_refused(response: httpx.Response) -> None:
    """``read_refused`` for ``httpx.AsyncClient``."""
    try:
        raw = await _read_at_most(response.aiter_raw(), REFUSED_BODY_LIMIT)
    except httpx.HTTPError:
        raw = b""
    finally:
        await response.aclose()
    response._content = refused_body(response.status_code, response.headers, raw)


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
