"""Token requests the app would never make: one given assertion, posted once (replays, old
``iat``s), through the same flow pieces and driver as the app's own requests."""

from __future__ import annotations

import time
from collections.abc import Generator

import requests

from keycloak_jwt_auth.http.steps import Pause, Reply, Send
from keycloak_jwt_auth.http.transport import run_flow
from keycloak_jwt_auth.settings import ClientConfig
from keycloak_jwt_auth.tokens.flow import parse_token_response, token_request
from keycloak_jwt_auth.tokens.token import AccessToken


def post_assertion(
    config: ClientConfig, assertion: str, *, session: requests.Session
) -> AccessToken:
    """One POST of ``assertion``, no retry, no other credential."""

    def once() -> Generator[Send | Pause, Reply | None, AccessToken]:
        started = time.time()
        reply = yield token_request(config)(assertion)
        assert reply is not None
        return parse_token_response(reply, started=started)

    return run_flow(once(), session, config)
