"""Tokens for one audience by the real Keycloak's standard token exchange: what it issues, what
an API that checks ``aud`` makes of it, each refusal, the cap at the subject's expiry, and one
exchange per lifetime per audience for processes sharing Redis (counted at Keycloak: its
TOKEN_EXCHANGE events)."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis
import requests

from keycloak_jwt_auth import TokenExchangeError, auth_headers, get_access_token
from keycloak_jwt_auth.client_auth import ASSERTION_TYPE
from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak
from support.keycloak_events import token_events
from support.peers import EXCHANGE_AUDIENCES
from support.realm import realm_secrets
from support.worker import run_workers
from tests.keyring import pem

from .conftest import client_settings

pytestmark = pytest.mark.keycloak

SHORT_LIVED = "django-short-lived"  # 10 s tokens; exchanges for billing-api and reports-api
LIFETIME = 10.0
RENEWAL_PERIOD = LIFETIME * 2 / 3  # renewal starts a third of the lifetime before expiry


def api_accepts(server_url: str, token: str, audience: str) -> dict[str, Any]:
    """What an API requiring ``audience`` checks: the realm's signature, expiry, issuer and
    ``aud`` (``jwt.InvalidTokenError`` when it refuses)."""
    issuer = f"{server_url}/realms/demo"
    keys = jwt.PyJWKClient(f"{issuer}/protocol/openid-connect/certs")
    key = keys.get_signing_key_from_jwt(token).key
    claims: dict[str, Any] = jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=issuer
    )
    return claims


def test_a_token_for_one_audience_is_refused_by_another_api(real_keycloak: str) -> None:
    own = get_access_token()
    billing = get_access_token(audience="billing-api")
    claims = api_accepts(real_keycloak, billing, "billing-api")
    assert claims["aud"] == "billing-api"  # one string: that API only
    assert claims["azp"] == "django-service"
    assert "realm-management" not in claims.get("resource_access", {})
    with pytest.raises(jwt.InvalidAudienceError):
        api_accepts(real_keycloak, billing, "reports-api")
    # The client's own token carries every audience it may exchange for, and more.
    assert {"billing-api", "reports-api", "realm-management"} <= set(
        api_accepts(real_keycloak, own, "reports-api")["aud"]
    )
    reports = api_accepts(real_keycloak, get_access_token(audience="reports-api"), "reports-api")
    assert reports["resource_access"] == {"reports-api": {"roles": ["read"]}}  # a client role
    assert get_access_token(audience="billing-api") == billing  # cached


@pytest.mark.parametrize(
    ("client", "audience", "fix"),
    [
        ("hs512", "billing-api", "standard.token.exchange.enabled=true"),
        ("default", "ledger-api", "an audience mapper for 'ledger-api'"),
        ("default", "no-such-api", "The realm has no client 'no-such-api'"),
    ],
    ids=["not enabled", "not available", "unknown audience"],
)
def test_each_refusal_is_a_typed_error_naming_the_fix(
    real_keycloak: str, client: str, audience: str, fix: str
) -> None:
    with pytest.raises(TokenExchangeError) as refused:
        get_access_token(client, audience=audience)
    assert fix in str(refused.value)
    assert refused.value.status == 400


def test_the_exchanged_token_is_renewed_no_later_than_the_subject_expires(
    real_keycloak: str,
) -> None:
    subjects = clients["short-lived"].manager
    first_subject = subjects.get_token()
    time.sleep(3)  # the subject has 7 s left; Keycloak would give an exchanged token 10 s
    exchanged = clients["short-lived"].manager_for("billing-api").get_token()
    issued = jwt.decode(exchanged.value, options={"verify_signature": False})
    assert (
        issued["exp"] > jwt.decode(first_subject.value, options={"verify_signature": False})["exp"]
    )
    assert exchanged.usable_until <= first_subject.usable_until

    served: dict[str, tuple[float, float]] = {}  # token -> (first, last) time it was handed out
    subject_expiry: dict[str, float] = {}  # exchanged token -> its subject's expiry
    ends = time.time() + 2 * LIFETIME
    while time.time() < ends:
        token = get_access_token("short-lived", audience="billing-api")
        now = time.time()
        served[token] = (served.get(token, (now, now))[0], now)
        subject = subjects.peek()
        assert subject is not None
        subject_expiry.setdefault(token, subject.expires_at)
        time.sleep(0.05)
    assert len(served) >= 3  # renewed along with the subject, twice or more
    for token, (_, last) in served.items():
        assert last < subject_expiry[token]  # never handed out after its subject expired


@pytest.mark.redis
def test_4_processes_make_one_exchange_per_lifetime_per_audience(
    real_keycloak: str, redis_server: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_server).flushdb()
    duration = 24.0  # subject renewals at about 6.7, 13.3 and 20 s: 4 subjects, 4 exchanges each
    since = time.time()
    reports = run_workers(
        "app-audiences",
        tmp_path,
        processes=4,
        duration=duration,
        client=SHORT_LIVED,
        cache_url=redis_server,
        threads=4,
        interval=0.02,
    )
    exchanges = token_events(SHORT_LIVED, since, time.time(), kind="TOKEN_EXCHANGE")
    logins = token_events(SHORT_LIVED, since, time.time())

    for report in reports:
        assert report["errors"] == 0, report["error_samples"]
        assert report["expired_served"] == 0 and report["calls"] > 0
    expected = 1 + int(duration // RENEWAL_PERIOD)
    by_audience = {
        a: [e for e in exchanges if e["details"].get("audience") == a] for a in EXCHANGE_AUDIENCES
    }
    counts = {a: len(events) for a, events in by_audience.items()}
    print(f"TOKEN_EXCHANGE per audience in {duration:.0f} s, 4 processes: {counts}; "
          f"CLIENT_LOGIN: {len(logins)}")  # fmt: skip
    assert counts == dict.fromkeys(EXCHANGE_AUDIENCES, expected)
    assert len(exchanges) == 2 * expected  # no exchange for any other audience
    assert len(logins) == expected  # the subject: one per lifetime too
    assert sum(r["app_fetches"] for r in reports) == 2 * expected
    served = {jti for r in reports for jti in r["tokens"]}
    assert len(served) == 2 * expected  # every exchanged token was used


# --- FakeKeycloak answers exchanges as the real one does --------------------------------------

EXCHANGE_CASES: dict[str, tuple[str, dict[str, str | None]]] = {
    "billing-api": ("django-service", {"audience": "billing-api"}),
    "reports-api": ("django-service", {"audience": "reports-api"}),
    "not available": ("django-service", {"audience": "ledger-api"}),
    "unknown audience": ("django-service", {"audience": "no-such-api"}),
    "not enabled": ("django-no-roles", {"audience": "billing-api"}),
    "not enabled, unknown audience": ("django-no-roles", {"audience": "no-such-api"}),
    "bad subject token": ("django-service", {"audience": "billing-api", "subject_token": "a.b.c"}),
    "no subject token": ("django-service", {"audience": "billing-api", "subject_token": None}),
    "no subject token type": ("django-service", {"subject_token_type": None}),
}


def exchange_answer(
    issuer: str, client_id: str, secret: str, fields: dict[str, str | None]
) -> tuple[Any, ...]:
    """What a token endpoint answers to an exchange of the client's own token: for a token, the
    parts that must agree (not the token or its times)."""
    endpoint = f"{issuer}/protocol/openid-connect/token"

    def authenticated(form: dict[str, str]) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": issuer, "iat": now, "exp": now + 60,
                  "jti": secrets.token_urlsafe(16)}  # fmt: skip
        assertion = jwt.encode(claims, secret.encode(), algorithm="HS256")
        return {**form, "client_id": client_id, "client_assertion": assertion,
                "client_assertion_type": ASSERTION_TYPE}  # fmt: skip

    own = requests.post(
        endpoint, data=authenticated({"grant_type": "client_credentials"}), timeout=10
    )
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "subject_token": own.json()["access_token"],
        "subject_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        **fields,
    }
    answer = requests.post(
        endpoint, data=authenticated({k: v for k, v in form.items() if v is not None}), timeout=10
    )
    body = answer.json()
    if answer.status_code != 200:
        return answer.status_code, body.get("error"), body.get("error_description")
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    lifespan = claims["exp"] - claims["iat"]
    return (
        200,
        claims["aud"],
        claims["azp"],
        "refresh_token" in body,
        body["expires_in"] == lifespan,
        body["token_type"],
        body["issued_token_type"],
    )


def test_fake_and_real_keycloak_answer_exchanges_alike(keycloak_server: str) -> None:
    secrets_by_client = realm_secrets()
    fake_clients = [
        FakeClient(client_id, secret=secrets_by_client[client_id])
        for client_id in ("django-service", "django-no-roles")
    ]
    with FakeKeycloak(clients=fake_clients) as fake:
        fake.allow_token_exchange("django-service", "billing-api", "reports-api")
        fake.add_client("ledger-api", algorithm=None, roles=(), service_accounts=False)
        rows = {
            name: tuple(
                exchange_answer(issuer, client_id, secrets_by_client[client_id], fields)
                for issuer in (f"{keycloak_server}/realms/demo", fake.issuer)
            )
            for name, (client_id, fields) in EXCHANGE_CASES.items()
        }
    assert {name: real for name, (real, _) in rows.items()} == {
        name: faked for name, (_, faked) in rows.items()
    }
    assert rows["billing-api"][0][:4] == (200, "billing-api", "django-service", False)


def test_a_dpop_clients_exchanged_token_is_bound_and_works_only_with_a_proof(
    keycloak_server: str, settings: Any
) -> None:
    """django-dpop requires DPoP-bound tokens; its service account holds realm-management
    roles, so realm-management is an audience available to it: the Admin API takes the
    exchanged token with a fresh proof, and refuses it as a Bearer token."""
    settings.KEYCLOAK_JWT_AUTH = {
        **client_settings(keycloak_server),
        "CLIENT_ID": "django-dpop",
        "CLIENT_SECRET": realm_secrets()["django-dpop"],
        "DPOP_KEY": pem("ES256"),
    }
    url = f"{keycloak_server}/admin/realms/demo/users?max=1"
    headers = auth_headers("GET", url, audience="realm-management")
    scheme, token = headers["Authorization"].split()
    claims = jwt.decode(token, options={"verify_signature": False})
    owner = clients["default"]
    assert scheme == "DPoP" and owner.dpop is not None
    assert claims["cnf"]["jkt"] == owner.dpop.jkt and claims["aud"] == "realm-management"
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=10).status_code == 401
