"""``requests`` authentication with the service-account token."""

from __future__ import annotations

import functools
from typing import Any

import requests
from requests.auth import AuthBase

from keycloak_jwt_auth.http.transport import read_refused
from keycloak_jwt_auth.settings import DEFAULT_CLIENT
from keycloak_jwt_auth.tokens.manager import TokenManager
from keycloak_jwt_auth.tokens.token import AccessToken

from .authorize import Authorizer, CallAnswer


class ServiceAccountAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>`` (or ``DPoP <token>`` and a proof). After a 401
    from where the token was sent (same scheme, host and port), it drops that token and retries
    the request once with a fresh one (a DPoP server's nonce request: with the same token).
    A 401 from anywhere else (after a redirect, say) is returned as it is and drops nothing,
    and so is a second 401."""

    def __init__(self, client: str = DEFAULT_CLIENT, *, audience: str | None = None) -> None:
        self.client = client
        self.audience = audience  # a token exchanged for this API only (None: the client's)
        self._authorizer = Authorizer(client, audience)

    def __repr__(self) -> str:
        audience = "" if self.audience is None else f", audience={self.audience!r}"
        return f"ServiceAccountAuth(client={self.client!r}{audience})"

    @property
    def manager(self) -> TokenManager:
        return self._authorizer.manager

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token, headers = self._authorizer.authorize(str(request.method), str(request.url))
        request.headers.update(headers)
        hook = functools.partial(self._retry_after_401, token, str(request.url))
        request.register_hook("response", hook)  # type: ignore[no-untyped-call]
        return request

    def _retry_after_401(
        self, token: AccessToken, sent_to: str, response: requests.Response, **kwargs: Any
    ) -> requests.Response:
        sent = response.request
        answer = CallAnswer(sent_to, str(sent.url), response.status_code, response.headers)
        if not self._authorizer.retry_after(token, answer):
            return response
        retry = sent.copy()
        # The copy carries this hook too: clear it, so the retry happens once, not forever.
        retry.hooks = {"response": []}
        retry.headers.update(self._authorizer.authorize(str(retry.method), str(retry.url))[1])
        if retry.body is not None and hasattr(retry.body, "seek"):
            retry.body.seek(0)
        # Read the 401, capped (it stays readable in .history): a huge or gzip-bombed 401 must
        # not cost the memory its inflated body would take.
        read_refused(response)
        new_response: requests.Response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
