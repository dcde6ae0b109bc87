"""``requests`` authentication with the service-account token."""

from __future__ import annotations

from typing import Any

import requests
from requests.auth import AuthBase

from .conf import DEFAULT_CLIENT
from .manager import TokenManager, get_token_manager


class ServiceAccountAuth(AuthBase):
    """Adds ``Authorization: Bearer <token>``; after a 401 it drops that token and retries the
    request once with a fresh one (a second 401 is returned to the caller as it is)."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"ServiceAccountAuth(client={self.client!r})"

    @property
    def manager(self) -> TokenManager:
        return get_token_manager(self.client)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        token = self.manager.get_token()
        request.headers["Authorization"] = token.authorization
        request.register_hook("response", self._retry_after_401)  # type: ignore[no-untyped-call]
        return request

    def _retry_after_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        if response.status_code != 401:
            return response
        sent = response.request
        rejected = str(sent.headers.get("Authorization", "")).partition(" ")[2]
        self.manager.invalidate(rejected or None)
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
