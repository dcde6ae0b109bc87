"""``requests`` authentication with the service-account token."""

from __future__ import annotations

import functools
from typing import Any

import requests
from requests.auth import AuthBase

from keycloak_jwt_auth.settings import DEFAULT_CLIENT
from keycloak_jwt_auth.tokens.manager import TokenManager, get_token_manager

from .transport import url_origin

Origin = tuple[str, str, int | None]


class ServiceAccountAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>``. After a 401 from where the token was sent (same
    scheme, host and port), it drops that token and retries the request once with a fresh one.
    A 401 from anywhere else (after a redirect, say) is returned as it is and drops nothing,
    and so is a second 401."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"ServiceAccountAuth(client={self.client!r})"

    @property
    def manager(self) -> TokenManager:
        return get_token_manager(self.client)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.manager.get_token().authorization
        hook = functools.partial(self._retry_after_401, url_origin(str(request.url)))
        request.register_hook("response", hook)  # type: ignore[no-untyped-call]
        return request

    def _retry_after_401(
        self, sent_to: Origin, response: requests.Response, **kwargs: Any
    ) -> requests.Response:
        sent = response.request
        if (
            response.status_code != 401
            or url_origin(str(sent.url)) != sent_to
            or not str(sent.headers.get("Authorization", "")).startswith("Bearer ")
            # A token fetched after the last refusal is kept: retrying would change nothing.
            or not self.manager.invalidate(str(sent.headers["Authorization"])[len("Bearer ") :])
        ):
            return response
        retry = sent.copy()
        # The copy carries this hook too: clear it, so the retry happens once, not forever.
        retry.hooks = {"response": []}
        retry.headers["Authorization"] = self.manager.get_token().authorization
        if retry.body is not None and hasattr(retry.body, "seek"):
            retry.body.seek(0)
        # Read the 401 (it stays readable in .history) and hand its connection back to the pool.
        _ = response.content
        response.close()
        new_response: requests.Response = response.connection.send(retry, **kwargs)
        new_response.history.append(response)
        new_response.request = retry
        return new_response
