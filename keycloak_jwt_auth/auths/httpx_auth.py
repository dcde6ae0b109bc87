"""``httpx`` authentication with the service-account token, and the pooled async clients the
async Admin API uses. Imported only when httpx is used (the ``async`` extra)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Generator

# isort: off
from keycloak_jwt_auth.http import (
    async_transport,
)  # (first: without httpx, the error names the extra)
import httpx

# isort: on
from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.settings import DEFAULT_CLIENT
from keycloak_jwt_auth.tokens.manager import TokenManager

from .authorize import Authorizer, CallAnswer


class HttpxServiceAccountAuth(httpx.Auth):
    """``Authorization: Bearer <token>`` for ``httpx.Client`` and ``httpx.AsyncClient``, with
    the rule of ``ServiceAccountAuth``: after a 401 from where the token was sent (same scheme,
    host and port), drop that token and retry once with a fresh one."""

    def __init__(self, client: str = DEFAULT_CLIENT, *, audience: str | None = None) -> None:
        self.client = client
        self.audience = audience  # a token exchanged for this API only (None: the client's)
        self._authorizer = Authorizer(client, audience)

    def __repr__(self) -> str:
        audience = "" if self.audience is None else f", audience={self.audience!r}"
        return f"HttpxServiceAccountAuth(client={self.client!r}{audience})"

    @property
    def manager(self) -> TokenManager:
        return self._authorizer.manager

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        token, headers = self._authorizer.authorize(request.method, str(request.url))
        request.headers.update(headers)
        response = yield request
        sent_to = str(request.url)
        if self._authorizer.retry_after(token, answer_to(request, response)):
            async_transport.read_refused(response)  # capped: httpx would read it all, inflated
            request.headers.update(self._authorizer.authorize(request.method, sent_to)[1])
            yield request

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token, headers = await self._authorizer.aauthorize(request.method, str(request.url))
        request.headers.update(headers)
        response = yield request
        sent_to = str(request.url)
        if await self._authorizer.aretry_after(token, answer_to(request, response)):
            await async_transport.aread_refused(response)
            request.headers.update((await self._authorizer.aauthorize(request.method, sent_to))[1])
            yield request


def answer_to(request: httpx.Request, response: httpx.Response) -> CallAnswer:
    return CallAnswer(
        str(request.url), str(response.request.url), response.status_code, response.headers
    )


def async_client(client: str) -> httpx.AsyncClient:
    """This event loop's pooled client for ``client`` (another loop, or a forked child, gets its
    own: connections belong to the loop and the process that opened them)."""
    owner = clients[client]

    def build() -> httpx.AsyncClient:
        return httpx.AsyncClient(
            auth=HttpxServiceAccountAuth(client),
            verify=owner.config.verify,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    return owner.async_client(build)


async def aclose_clients() -> None:
    """Close this event loop's pooled clients (e.g. in an ASGI lifespan's shutdown)."""
    for owner in list(clients.values()):
        await owner.aclose()
