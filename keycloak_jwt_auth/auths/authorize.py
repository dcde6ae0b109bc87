"""Where a token meets a request: the headers for one call, and the one rule after a 401.

Every way this app sends a token — ``ServiceAccountAuth`` (requests), ``HttpxServiceAccountAuth``
(sync and async httpx), and through them both Admin API clients — goes through ``Authorizer``.
Today a token is sent as ``Authorization: Bearer``; a sender-constrained token adds its proof
for the exact method and URL in ``headers_for``, and nowhere else.
"""

from __future__ import annotations

import asyncio

from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.http.transport import url_origin
from keycloak_jwt_auth.tokens.manager import TokenManager
from keycloak_jwt_auth.tokens.token import AccessToken


def headers_for(token: AccessToken, method: str, url: str) -> dict[str, str]:
    """The headers that let ``token`` authorize one ``method`` ``url`` call."""
    return {"Authorization": token.authorization}


def refused_where_sent(sent_to: str, answered_by: str, status: int) -> bool:
    """A 401 from where the token was sent (same scheme, host and port). A 401 from anywhere
    else (after a redirect, say) says nothing about our token."""
    return status == 401 and url_origin(answered_by) == url_origin(sent_to)


class Authorizer:
    """One client's calls: the headers each needs, and whether a refused call is retried."""

    def __init__(self, client: str) -> None:
        self.client = client

    @property
    def manager(self) -> TokenManager:
        return clients[self.client].manager

    def authorize(self, method: str, url: str) -> tuple[AccessToken, dict[str, str]]:
        token = self.manager.get_token()
        return token, headers_for(token, method, url)

    async def aauthorize(self, method: str, url: str) -> tuple[AccessToken, dict[str, str]]:
        token = await self.manager.aget_token()
        return token, headers_for(token, method, url)

    def retry_after(self, token: AccessToken, sent_to: str, answered_by: str, status: int) -> bool:
        """After a 401 from where ``token`` was sent: drop it and retry once with a fresh one —
        unless the token was fetched after such a drop moments ago (then a retry would change
        nothing, and an API that always answers 401 must not cost a token request per call)."""
        return refused_where_sent(sent_to, answered_by, status) and self.manager.invalidate(
            token.value
        )

    async def aretry_after(
        self, token: AccessToken, sent_to: str, answered_by: str, status: int
    ) -> bool:
        if not refused_where_sent(sent_to, answered_by, status):
            return False
        return await asyncio.to_thread(self.manager.invalidate, token.value)  # the shared cache
