"""Where a token meets a request: the headers for one call, and the one rule after a 401.

Every way this app sends a token — ``ServiceAccountAuth`` (requests), ``HttpxServiceAccountAuth``
(sync and async httpx), through them both Admin API clients, and ``auth_headers`` for any other
HTTP library — goes through ``headers_for``: ``Authorization: Bearer``, or for a DPoP-bound
token ``Authorization: DPoP`` and a new proof for the exact method and URL.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Mapping

from keycloak_jwt_auth.client_auth.dpop import DPoPSigner
from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.http.transport import url_origin
from keycloak_jwt_auth.settings import DEFAULT_CLIENT
from keycloak_jwt_auth.tokens.manager import TokenManager
from keycloak_jwt_auth.tokens.token import DPOP, AccessToken


def headers_for(
    token: AccessToken, method: str, url: str, dpop: DPoPSigner | None = None
) -> dict[str, str]:
    """The headers that let ``token`` authorize one ``method`` ``url`` call."""
    if dpop is None or token.token_type != DPOP:
        return {"Authorization": token.authorization}
    proof = dpop.proof(method, url, access_token=token.value)
    return {"Authorization": token.authorization, "DPoP": proof}


def auth_headers(
    method: str, url: str, *, client: str = DEFAULT_CLIENT, audience: str | None = None
) -> dict[str, str]:
    """The headers one ``method`` ``url`` call needs (``Authorization``, and ``DPoP`` when the
    client's tokens are bound), for any HTTP library; with ``audience``, carrying the token
    exchanged for that API. Call it once per request: a proof is single use."""
    return Authorizer(client, audience).authorize(method, url)[1]


async def aauth_headers(
    method: str, url: str, *, client: str = DEFAULT_CLIENT, audience: str | None = None
) -> dict[str, str]:
    """``auth_headers`` for async code."""
    return (await Authorizer(client, audience).aauthorize(method, url))[1]


def refused_where_sent(sent_to: str, answered_by: str, status: int) -> bool:
    """A 401 from where the token was sent (same scheme, host and port). A 401 from anywhere
    else (after a redirect, say) says nothing about our token."""
    return status == 401 and url_origin(answered_by) == url_origin(sent_to)


@dataclasses.dataclass(frozen=True)
class CallAnswer:
    """What a call's answer says about its token: where the call was sent, who answered
    (after redirects), the status and the headers."""

    sent_to: str
    answered_by: str
    status: int
    headers: Mapping[str, str]

    @property
    def refused_our_token(self) -> bool:
        return refused_where_sent(self.sent_to, self.answered_by, self.status)


class Authorizer:
    """One client's calls (with its own token, or the one exchanged for ``audience``): the
    headers each needs, and whether a refused call is retried."""

    def __init__(self, client: str, audience: str | None = None) -> None:
        self.client = client
        self.audience = audience

    @property
    def manager(self) -> TokenManager:
        return clients[self.client].manager_for(self.audience)

    def authorize(self, method: str, url: str) -> tuple[AccessToken, dict[str, str]]:
        owner = clients[self.client]
        token = owner.manager_for(self.audience).get_token()
        return token, headers_for(token, method, url, owner.dpop)

    async def aauthorize(self, method: str, url: str) -> tuple[AccessToken, dict[str, str]]:
        owner = clients[self.client]
        token = await owner.manager_for(self.audience).aget_token()
        return token, headers_for(token, method, url, owner.dpop)

    def retry_after(self, token: AccessToken, answer: CallAnswer) -> bool:
        """After a 401 from where ``token`` was sent: drop it and retry once with a fresh one —
        unless the token was fetched after such a drop moments ago (then a retry would change
        nothing, and an API that always answers 401 must not cost a token request per call).
        A DPoP server's ``use_dpop_nonce`` is retried with the same token and a proof carrying
        its new nonce."""
        if not answer.refused_our_token:
            return False
        return self._wants_nonce(answer) or self.manager.invalidate(token.value)

    async def aretry_after(self, token: AccessToken, answer: CallAnswer) -> bool:
        if not answer.refused_our_token:
            return False
        if self._wants_nonce(answer):
            return True
        return await asyncio.to_thread(self.manager.invalidate, token.value)  # the shared cache

    def _wants_nonce(self, answer: CallAnswer) -> bool:
        dpop = clients[self.client].dpop
        return dpop is not None and dpop.asks_for_nonce(
            answer.sent_to, answer.status, answer.headers
        )
