"""Tokens for one audience by standard token exchange (RFC 8693): the flow pumped by hand, and
every entry point against FakeKeycloak, which answers exchanges as Keycloak 26.7 does."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import requests
from django.test import override_settings

from keycloak_jwt_auth import (
    HttpxServiceAccountAuth,
    InvalidTokenResponseError,
    OAuthError,
    ServiceAccountAuth,
    TokenExchangeError,
    aauth_headers,
    aget_access_token,
    auth_headers,
    get_access_token,
)
from keycloak_jwt_auth.auths.authorize import Authorizer, CallAnswer
from keycloak_jwt_auth.clients import clients, get_client_config
from keycloak_jwt_auth.http.steps import Pause, Reply, Send
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak
from keycloak_jwt_auth.testing.issuer import ProjectedToken, TestIssuer
from keycloak_jwt_auth.tokens.exchange import GRANT_TYPE, ExchangeManager, exchange_flow
from keycloak_jwt_auth.tokens.flow import TokenFlow
from keycloak_jwt_auth.tokens.token import AccessToken

from .keyring import pem
from .reports import failure, leaked, rendered

CLIENT = "django-service"


@pytest.fixture
def exchanging(fake_keycloak: FakeKeycloak) -> FakeKeycloak:
    """The fake's client may exchange its token for billing-api and reports-api; ledger-api
    exists but is not available to it."""
    fake_keycloak.allow_token_exchange(CLIENT, "billing-api", "reports-api")
    fake_keycloak.add_client("ledger-api", algorithm=None, roles=(), service_accounts=False)
    return fake_keycloak


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def client_credentials_requests(fake: FakeKeycloak) -> int:
    return fake.token_requests - len(fake.exchanges)


# --- the flow, pumped by hand -----------------------------------------------------------------


def subject_token(*, expires_in: float, lifetime: float = 300.0) -> AccessToken:
    now = time.time()
    return AccessToken(
        "subject.token.value", now + expires_in, issued_at=now + expires_in - lifetime
    )


def reply(status: int, body: dict[str, Any]) -> Reply:
    data = json.dumps(body).encode()
    return Reply(status, {"Content-Type": "application/json"}, data, "https://kc.test/token")


def new_exchange(subject: AccessToken) -> TokenFlow:
    """The exchange of ``subject`` for billing-api, by the default client."""
    config = get_client_config()
    return exchange_flow(config, clients["default"].authentication, subject, "billing-api")


def test_the_exchange_is_one_send_with_the_subject_and_a_fresh_assertion() -> None:
    subject = subject_token(expires_in=250)
    flow = new_exchange(subject)
    send = next(flow)
    assert isinstance(send, Send)
    assert send.form["grant_type"] == GRANT_TYPE
    assert send.form["subject_token"] == subject.value
    assert send.form["subject_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    assert send.form["requested_token_type"] == send.form["subject_token_type"]
    assert send.form["audience"] == "billing-api"
    assert send.form["client_assertion"] and "client_secret" not in send.form
    assert "scope" not in send.form
    assert subject.value not in repr(send)
    with pytest.raises(StopIteration) as done:
        flow.send(reply(200, {"access_token": "exchanged", "expires_in": 300}))
    token = done.value.value.token
    # Keycloak's 300 s from now would outlive the subject's 250 s: it takes the subject's
    # window, so that it is handed out, and renewed, no later than the subject.
    assert token.expires_at == subject.expires_at
    assert token.usable_until == subject.usable_until
    assert token.renew_from(30) == subject.renew_from(30)


def test_a_token_that_ends_before_the_subject_is_kept_as_it_is() -> None:
    flow = new_exchange(subject_token(expires_in=250))
    next(flow)
    with pytest.raises(StopIteration) as done:
        flow.send(reply(200, {"access_token": "exchanged", "expires_in": 60}))
    assert done.value.value.token.expires_in() == pytest.approx(60, abs=1)


def test_a_refusal_is_a_typed_error_with_the_server_text_escaped() -> None:
    flow = new_exchange(subject_token(expires_in=250))
    next(flow)
    description = "Requested audience not available: billing-api\x1b[31m\nforged"
    with pytest.raises(TokenExchangeError) as refused:
        flow.send(reply(400, {"error": "invalid_request", "error_description": description}))
    message = str(refused.value)
    assert "\x1b" not in message and "\n" not in message and "\\x1b" in message
    assert "audience mapper for 'billing-api'" in message
    assert refused.value.status == 400 and refused.value.error == "invalid_request"
    assert refused.value.audience == "billing-api" and isinstance(refused.value, OAuthError)


def test_no_answer_is_retried_like_the_clients_own_token_request() -> None:
    flow = new_exchange(subject_token(expires_in=250))
    first = next(flow)
    assert isinstance(first, Send)
    assert isinstance(flow.send(reply(503, {})), Pause)
    second = next(flow)
    assert isinstance(second, Send)
    assert second.form["client_assertion"] != first.form["client_assertion"]  # fresh each time


# --- against FakeKeycloak -----------------------------------------------------------------


def test_a_token_for_one_audience_only(exchanging: FakeKeycloak) -> None:
    own = get_access_token()
    billing = get_access_token(audience="billing-api")
    claims = exchanging.verify_token(billing)
    assert claims["aud"] == "billing-api"  # one string
    assert claims["azp"] == CLIENT
    assert "realm-management" not in claims.get("resource_access", {})
    assert billing != own and get_access_token() == own
    assert get_access_token(audience="billing-api") == billing  # cached
    assert exchanging.exchanges == [(CLIENT, "billing-api")]
    assert client_credentials_requests(exchanging) == 1  # the subject was the client's own


def test_each_audience_has_its_own_token_and_cache_key(exchanging: FakeKeycloak) -> None:
    billing = get_access_token(audience="billing-api")
    reports = get_access_token(audience="reports-api")
    assert exchanging.verify_token(reports)["aud"] == "reports-api"
    assert billing != reports
    owner = clients["default"]
    keys = {
        owner.manager.store.key,
        *(owner.manager_for(a).store.key for a in ("billing-api", "reports-api")),
    }
    assert len(keys) == 3
    assert sorted(str(a) for _, a in exchanging.exchanges) == ["billing-api", "reports-api"]
    assert client_credentials_requests(exchanging) == 1


def test_the_exchanged_token_never_outlives_the_clients_own(exchanging: FakeKeycloak) -> None:
    own = clients["default"].manager.get_token()
    exchanging.clock = lambda: time.time() + 30  # Keycloak's clock: exp 30 s past the subject's
    billing = clients["default"].manager_for("billing-api").get_token()
    assert claims_of(billing.value)["exp"] > claims_of(own.value)["exp"]
    assert billing.usable_until <= own.usable_until


def test_threads_share_one_exchange(exchanging: FakeKeycloak) -> None:
    start = threading.Barrier(8)
    tokens: list[str] = []

    def call() -> None:
        start.wait()
        tokens.append(get_access_token(audience="billing-api"))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(tokens)) == 1 and len(tokens) == 8
    assert len(exchanging.exchanges) == 1
    assert client_credentials_requests(exchanging) == 1


def test_async_tasks_share_the_same_token(exchanging: FakeKeycloak) -> None:
    async def main() -> list[str]:
        return list(
            await asyncio.gather(*(aget_access_token(audience="billing-api") for _ in range(5)))
        )

    tokens = asyncio.run(main())
    assert len(set(tokens)) == 1
    assert tokens[0] == get_access_token(audience="billing-api")
    assert len(exchanging.exchanges) == 1


def test_force_refresh_exchanges_again_and_keeps_the_clients_own(exchanging: FakeKeycloak) -> None:
    own = get_access_token()
    first = get_access_token(audience="billing-api")
    second = get_access_token(audience="billing-api", force_refresh=True)
    assert first != second and get_access_token() == own
    assert len(exchanging.exchanges) == 2 and client_credentials_requests(exchanging) == 1


def test_the_auths_and_headers_carry_the_exchanged_token(exchanging: FakeKeycloak) -> None:
    url = "https://billing.test/invoices"
    headers = auth_headers("GET", url, audience="billing-api")
    token = headers["Authorization"].removeprefix("Bearer ")
    assert exchanging.verify_token(token)["aud"] == "billing-api"
    assert asyncio.run(aauth_headers("GET", url, audience="billing-api")) == headers
    prepared = ServiceAccountAuth(audience="billing-api")(requests.Request("GET", url).prepare())
    assert prepared.headers["Authorization"] == headers["Authorization"]
    auth = HttpxServiceAccountAuth(audience="reports-api")
    request = next(auth.sync_auth_flow(httpx.Request("GET", url)))
    assert (
        exchanging.verify_token(request.headers["Authorization"].split()[1])["aud"] == "reports-api"
    )
    assert "audience='billing-api'" in repr(ServiceAccountAuth(audience="billing-api"))
    assert repr(ServiceAccountAuth()) == "ServiceAccountAuth(client='default')"


def test_a_401_drops_the_exchanged_token_only(exchanging: FakeKeycloak) -> None:
    own = get_access_token()
    authorizer = Authorizer("default", "billing-api")
    token, _ = authorizer.authorize("GET", "https://billing.test/x")
    answer = CallAnswer("https://billing.test/x", "https://billing.test/x", 401, {})
    assert authorizer.retry_after(token, answer)
    renewed, _ = authorizer.authorize("GET", "https://billing.test/x")
    assert renewed.value != token.value and get_access_token() == own
    assert len(exchanging.exchanges) == 2


REFUSALS = {
    "not enabled": ("reports-api", "standard.token.exchange.enabled=true", 400, "invalid_request"),
    "not available": ("ledger-api", "an audience mapper for 'ledger-api'", 400, "invalid_request"),
    "unknown": ("nowhere-api", "has no client 'nowhere-api'", 400, "invalid_client"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal_says_what_to_switch_on(exchanging: FakeKeycloak, case: str) -> None:
    audience, fix, status, error = REFUSALS[case]
    if case == "not enabled":
        exchanging.client(CLIENT).standard_token_exchange = False
    with pytest.raises(TokenExchangeError) as refused:
        get_access_token(audience=audience)
    assert fix in str(refused.value) and CLIENT in str(refused.value)
    assert (refused.value.status, refused.value.error) == (status, error)
    assert exchanging.exchanges == []
    assert get_access_token()  # the client's own token is not affected


def test_a_dpop_clients_exchanged_token_is_bound_to_its_key(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    fake_keycloak.add_client(FakeClient("django-dpop", secret="d" * 40, dpop_bound=True))
    fake_keycloak.allow_token_exchange("django-dpop", "billing-api")
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("django-dpop", DPOP_KEY=pem("ES256"))
    url = "https://billing.test/invoices"
    headers = auth_headers("GET", url, audience="billing-api")
    scheme, token = headers["Authorization"].split()
    assert scheme == "DPoP" and set(headers) == {"Authorization", "DPoP"}
    claims = fake_keycloak.verify_token(token)
    owner = clients["default"]
    assert owner.dpop is not None and claims["cnf"]["jkt"] == owner.dpop.jkt
    assert claims["aud"] == "billing-api"
    proof = jwt.decode(headers["DPoP"], options={"verify_signature": False})
    assert (proof["htm"], proof["htu"]) == ("GET", url)
    manager = owner.manager_for("billing-api")
    assert manager.dpop is owner.dpop  # one key, one nonce book
    assert manager.store.key != owner.manager.store.key


def test_a_bearer_answer_to_a_dpop_clients_exchange_is_refused(settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = {**settings.KEYCLOAK_JWT_AUTH, "DPOP_KEY": pem("ES256")}
    owner = clients["default"]
    subject = subject_token(expires_in=250)
    flow = exchange_flow(
        owner.config, owner.authentication, subject, "billing-api", dpop=owner.dpop
    )
    send = next(flow)
    assert isinstance(send, Send) and "DPoP" in send.headers
    body = {"access_token": "exchanged", "expires_in": 300, "token_type": "Bearer"}
    with pytest.raises(InvalidTokenResponseError, match="ignored the proof"):
        flow.send(reply(200, body))


@pytest.mark.parametrize("audience", ["", "  ", "a\nb", "x" * 300, 42])
def test_an_unusable_audience_is_refused_before_any_request(
    exchanging: FakeKeycloak, audience: Any
) -> None:
    with pytest.raises(ValueError, match="audience"):
        get_access_token(audience=audience)
    assert exchanging.token_requests == 0


def test_managers_are_built_once_per_audience_and_dropped_with_the_settings(
    exchanging: FakeKeycloak, settings: Any
) -> None:
    owner = clients["default"]
    manager = owner.manager_for("billing-api")
    assert isinstance(manager, ExchangeManager) and manager.subject is owner.manager
    assert owner.manager_for("billing-api") is manager
    assert owner.manager_for(None) is owner.manager
    assert "audience='billing-api'" in repr(manager)
    settings.KEYCLOAK_JWT_AUTH = {**settings.KEYCLOAK_JWT_AUTH, "TIMEOUT": 7}
    assert clients["default"].manager_for("billing-api") is not manager


class Subjects:
    """A client's own manager whose token is due for renewal until its renewal lands."""

    def __init__(self, due: AccessToken, fresh: AccessToken, after_calls: int) -> None:
        self.tokens = iter([due] * after_calls + [fresh] * 100)
        self.calls = 0

    def get_token(self) -> AccessToken:
        self.calls += 1
        return next(self.tokens)

    def renew_from(self, token: AccessToken) -> float:
        return token.renew_from(30)


def test_a_subject_due_for_renewal_is_waited_for(
    exchanging: FakeKeycloak, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = clients["default"].manager_for("billing-api")
    assert isinstance(manager, ExchangeManager)
    due, fresh = subject_token(expires_in=10), subject_token(expires_in=290)
    monkeypatch.setattr(manager, "subject", Subjects(due, fresh, after_calls=3))
    waiting = manager._fresh_subject()
    steps = [next(waiting) for _ in range(3)]
    assert all(isinstance(step, Pause) for step in steps)  # each pause keeps the lock alive
    with pytest.raises(StopIteration) as done:
        next(waiting)
    assert done.value.value is fresh


@pytest.fixture
def no_renewal_lands(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr("keycloak_jwt_auth.tokens.exchange.longest_fetch", lambda config: 0.3)
    yield


def test_a_subject_whose_renewal_never_lands_is_used_after_one_fetchs_worst_case(
    exchanging: FakeKeycloak, monkeypatch: pytest.MonkeyPatch, no_renewal_lands: None
) -> None:
    manager = clients["default"].manager_for("billing-api")
    assert isinstance(manager, ExchangeManager)
    due = subject_token(expires_in=10)
    monkeypatch.setattr(manager, "subject", Subjects(due, due, after_calls=1000))
    waiting = manager._fresh_subject()
    started = time.monotonic()
    with pytest.raises(StopIteration) as done:
        while True:
            step = next(waiting)
            assert isinstance(step, Pause)
            time.sleep(step.seconds)
    assert done.value.value is due and time.monotonic() - started < 2


@pytest.mark.parametrize("audience", ["ledger-api", "billing-api"])
def test_no_report_of_an_exchange_shows_a_token_or_the_secret(
    exchanging: FakeKeycloak, settings: Any, audience: str
) -> None:
    """Django's error reports (DEBUG on and off) of a refused exchange, and of an exchange that
    got no answer: every frame of the flow held the subject token and the assertion."""
    secret = exchanging.client(CLIENT).secret
    assert secret is not None
    subject = get_access_token()
    if audience == "billing-api":
        settings.KEYCLOAK_JWT_AUTH = {**settings.KEYCLOAK_JWT_AUTH, "RETRIES": 0}
        exchanging.fail("down")
    exc_info = failure(lambda: get_access_token(audience=audience))
    assert exc_info is not None
    frames = [frame.f_code.co_name for frame, _ in traceback.walk_tb(exc_info[2])]
    assert "exchange_flow" in frames  # the subject was at hand (cached): the exchange failed
    assert leaked(exc_info, [subject, secret]) == []
    assert not any(re.search(r"eyJ[\w-]+\.[\w-]+", report) for report in rendered(exc_info))


def test_a_federated_client_exchanges_with_its_own_client_authentication(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The exchange authenticates the client as its token requests do: here with the
    Kubernetes-like JWT of its assertion file, no secret or key anywhere."""
    subject_name = "system:serviceaccount:default:django-service"
    with TestIssuer() as issuer, FakeKeycloak() as fake:
        fake.add_identity_provider("kubernetes", issuer.url)
        fake.add_federated_client("federated-service", "kubernetes", subject_name)
        fake.allow_token_exchange("federated-service", "billing-api")
        projected = ProjectedToken(tmp_path / "kube", issuer, audience=fake.issuer)
        projected.rotate()
        own = fake.settings("federated-service", ASSERTION_FILE=projected.path)
        with override_settings(KEYCLOAK_JWT_AUTH=own):
            token = get_access_token(audience="billing-api")
        claims = fake.verify_token(token)
        assert (claims["aud"], claims["azp"]) == ("billing-api", "federated-service")
        assert fake.exchanges == [("federated-service", "billing-api")]
