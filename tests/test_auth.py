from __future__ import annotations

from typing import Any

import pytest
import requests
import responses

from keycloak_jwt_auth import ServiceAccountAuth, get_token_manager

from .conftest import token_body, token_calls

API = "https://api.test/resource"


def auth_headers(mocked: responses.RequestsMock) -> list[str | None]:
    return [c.request.headers.get("Authorization") for c in mocked.calls if c.request.url == API]


def test_adds_the_bearer_token(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("tok"))
    mocked.get(API, json={"ok": True})
    response = requests.get(API, auth=ServiceAccountAuth())
    assert response.json() == {"ok": True}
    assert auth_headers(mocked) == ["Bearer tok"]


def test_401_renews_the_token_and_retries_once(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("revoked"), token_body("fresh"))
    mocked.get(API, status=401)
    mocked.get(API, json={"ok": True})
    response = requests.get(API, auth=ServiceAccountAuth())
    assert response.status_code == 200
    assert auth_headers(mocked) == ["Bearer revoked", "Bearer fresh"]
    assert [r.status_code for r in response.history] == [401]
    assert get_token_manager().get_token().value == "fresh"
    assert len(token_calls(mocked)) == 2


def test_second_401_is_returned_not_retried_forever(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("a"), token_body("b"), token_body("c"))
    mocked.get(API, status=401)
    response = requests.get(API, auth=ServiceAccountAuth())
    assert response.status_code == 401
    assert auth_headers(mocked) == ["Bearer a", "Bearer b"]


def test_retry_resends_the_body(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("a"), token_body("b"))
    mocked.post(API, status=401)
    mocked.post(API, json={})
    requests.post(API, json={"name": "x"}, auth=ServiceAccountAuth())
    bodies = [c.request.body for c in mocked.calls if c.request.url == API]
    assert bodies == [b'{"name": "x"}', b'{"name": "x"}']


def test_other_statuses_are_left_alone(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("a"), token_body("b"))
    mocked.get(API, status=403)
    assert requests.get(API, auth=ServiceAccountAuth()).status_code == 403
    assert len(token_calls(mocked)) == 1


def test_repr_is_safe() -> None:
    assert repr(ServiceAccountAuth("reports")) == "ServiceAccountAuth(client='reports')"


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://attacker.test/collect",  # another host
        "http://api.test/resource",  # same host, https -> http
        "https://api.test:8443/resource",  # same host, another port
    ],
)
def test_a_401_after_a_redirect_elsewhere_drops_nothing_and_sends_nothing(
    token_endpoint: Any, elsewhere: str
) -> None:
    mocked = token_endpoint(token_body("tok"), token_body("never"))
    mocked.get(API, status=302, headers={"Location": elsewhere})
    mocked.get(elsewhere, status=401)
    response = requests.get(API, auth=ServiceAccountAuth())
    assert response.status_code == 401  # returned as it is
    sent_elsewhere = [c.request for c in mocked.calls if c.request.url == elsewhere]
    assert len(sent_elsewhere) == 1  # no retry there
    assert "Authorization" not in sent_elsewhere[0].headers  # and no token, ever
    assert len(token_calls(mocked)) == 1  # the deployment's token was not dropped
    assert get_token_manager().get_token().value == "tok"


def test_an_api_that_always_answers_401_costs_one_new_token_not_one_per_call(
    token_endpoint: Any,
) -> None:
    mocked = token_endpoint(*(token_body(f"t{n}") for n in range(12)))
    mocked.get(API, status=401)
    statuses = [requests.get(API, auth=ServiceAccountAuth()).status_code for _ in range(10)]
    assert statuses == [401] * 10
    assert len(token_calls(mocked)) == 2  # the first token, and one after the first 401
    assert auth_headers(mocked) == ["Bearer t0", "Bearer t1"] + ["Bearer t1"] * 9
