"""The token flow without HTTP: pumped by hand, step by step; and the two drivers on one flow."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
import requests
import respx
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.client_auth import client_authentication
from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.exceptions import (
    InvalidClientError,
    InvalidRequestError,
    TokenEndpointUnavailableError,
)
from keycloak_jwt_auth.http.async_transport import arun_flow
from keycloak_jwt_auth.http.steps import Pause, Reply, Send
from keycloak_jwt_auth.http.transport import run_flow
from keycloak_jwt_auth.settings import ClientConfig
from keycloak_jwt_auth.tokens.flow import TokenFlow, token_flow

from .conftest import TOKEN_URL, token_body

OLD, NEW = settings.TEST_SECRET, "the-next-secret-0123456789-abcdefghijklmn"


def answer(status: int, body: dict[str, Any]) -> Reply:
    return Reply(status, {"Content-Type": "application/json"}, json.dumps(body).encode(), TOKEN_URL)


def signed_with(step: Send | Pause, secret: str) -> bool:
    assert isinstance(step, Send)
    try:
        jwt.decode(
            step.form["client_assertion"],
            secret,
            algorithms=["HS256"],
            options={"verify_aud": False},
        )
    except jwt.InvalidSignatureError:
        return False
    return True


@pytest.fixture
def config() -> Iterator[ClientConfig]:
    with override_settings(
        KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "FALLBACK_SECRETS": [NEW]}
    ):
        yield get_client_config()


def new_flow(config: ClientConfig, **kwargs: Any) -> TokenFlow:
    return token_flow(config, client_authentication(config), **kwargs)


def test_one_request_one_token(config: ClientConfig) -> None:
    flow = new_flow(config)
    send = next(flow)
    assert isinstance(send, Send) and send.method == "POST" and send.url == TOKEN_URL
    assert send.form["grant_type"] == "client_credentials" and "client_secret" not in send.form
    assert "client_assertion" not in repr(send) and send.form["client_assertion"] not in repr(send)
    with pytest.raises(StopIteration) as done:
        flow.send(answer(200, token_body("t1")))
    assert done.value.value.token.value == "t1"
    assert done.value.value.signer.name == "CLIENT_SECRET"


def test_a_refused_signature_moves_on_to_the_next_secret(config: ClientConfig) -> None:
    flow = new_flow(config)
    first = next(flow)
    assert signed_with(first, OLD)
    second = flow.send(answer(401, {"error": "unauthorized_client"}))
    assert signed_with(second, NEW)
    with pytest.raises(StopIteration) as done:
        flow.send(answer(200, token_body("t2")))
    assert done.value.value.signer.name == "FALLBACK_SECRETS[0]"


def test_every_secret_refused_raises_keycloaks_first_answer(config: ClientConfig) -> None:
    flow = new_flow(config)
    next(flow)
    flow.send(answer(401, {"error": "unauthorized_client", "error_description": "first"}))
    with pytest.raises(Exception) as refused:
        flow.send(answer(400, {"error": "invalid_client", "error_description": "second"}))
    assert refused.value.args[0].startswith("unauthorized_client: first")


def test_other_oauth_errors_are_final_at_once(config: ClientConfig) -> None:
    flow = new_flow(config)
    next(flow)
    with pytest.raises(InvalidRequestError):
        flow.send(answer(400, {"error": "invalid_request"}))


def test_no_answer_pauses_then_retries_with_a_fresh_assertion(config: ClientConfig) -> None:
    flow = new_flow(config, retries=1)
    first = next(flow)
    pause = flow.throw(TokenEndpointUnavailableError("Cannot reach the token endpoint"))
    assert isinstance(pause, Pause) and pause.seconds >= 0
    again = flow.send(None)
    assert isinstance(first, Send) and isinstance(again, Send)
    assert again.form["client_assertion"] != first.form["client_assertion"]  # a new jti
    with pytest.raises(TokenEndpointUnavailableError):  # the retries are used up
        flow.send(answer(503, {}))


def test_a_5xx_is_an_outage_and_retried(config: ClientConfig) -> None:
    flow = new_flow(config, retries=2)
    next(flow)
    assert isinstance(flow.send(answer(502, {})), Pause)


def test_a_redirect_refused_by_the_driver_is_final(config: ClientConfig) -> None:
    flow = new_flow(config)
    send = next(flow)
    assert isinstance(send, Send)
    with pytest.raises(Exception, match="redirect"):
        flow.throw(send.refused("answered HTTP 302 redirecting", 302))


# --- the two drivers pump the same flow ---------------------------------------------------------


def test_both_drivers_send_the_same_requests_and_return_the_same_token(
    config: ClientConfig, mocked: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    mocked.post(TOKEN_URL, json={"error": "unauthorized_client"}, status=401)
    mocked.post(TOKEN_URL, json=token_body("sync"))
    pauses: list[str] = []
    by_requests = run_flow(
        new_flow(config), requests.Session(), config, on_pause=lambda: pauses.append("")
    )
    sent_sync = [parse_qs(str(call.request.body)) for call in mocked.calls]

    with respx.mock(assert_all_called=True) as router:
        route = router.post(TOKEN_URL)
        route.side_effect = [
            httpx.Response(401, json={"error": "unauthorized_client"}),
            httpx.Response(200, json=token_body("async")),
        ]

        async def pump() -> Any:
            async with httpx.AsyncClient() as client:
                return await arun_flow(new_flow(config), client, config)

        by_httpx = asyncio.run(pump())
        sent_async = [parse_qs(call.request.content.decode()) for call in route.calls]

    assert (by_requests.token.value, by_httpx.token.value) == ("sync", "async")
    assert by_requests.signer.name == by_httpx.signer.name == "FALLBACK_SECRETS[0]"
    assert [sorted(form) for form in sent_sync] == [sorted(form) for form in sent_async]
    assert pauses == []


def test_both_drivers_pause_and_call_on_pause_between_tries(config: ClientConfig) -> None:
    kept: list[str] = []
    with respx.mock() as router:
        router.post(TOKEN_URL).side_effect = [
            httpx.ConnectError("refused"),
            httpx.Response(200, json=token_body("after-a-pause")),
        ]

        async def pump() -> Any:
            async with httpx.AsyncClient() as client:
                flow = new_flow(config, retries=1)
                return await arun_flow(flow, client, config, on_pause=lambda: kept.append("a"))

        assert asyncio.run(pump()).token.value == "after-a-pause"
    assert kept == ["a"]


def test_the_sync_driver_throws_no_answer_into_the_flow(config: ClientConfig, mocked: Any) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("refused"))
    mocked.post(TOKEN_URL, json={"error": "invalid_client"}, status=401)  # CLIENT_SECRET
    mocked.post(TOKEN_URL, json={"error": "invalid_client"}, status=401)  # FALLBACK_SECRETS[0]
    kept: list[str] = []
    flow = new_flow(config, retries=1)
    with pytest.raises(InvalidClientError):
        run_flow(flow, requests.Session(), config, on_pause=lambda: kept.append("s"))
    assert kept == ["s"] and len(mocked.calls) == 3
