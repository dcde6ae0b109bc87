"""Tokens for one audience by the real Keycloak's standard token exchange: what it issues, what
an API that checks ``aud`` makes of it, each refusal, the cap at the subject's expiry, and one
exchange per lifetime per audience for processes sharing Redis (counted at Keycloak: its
TOKEN_EXCHANGE events)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import redis

from keycloak_jwt_auth import TokenExchangeError, get_access_token
from keycloak_jwt_auth.clients import clients
from support.keycloak_events import token_events
from support.peers import EXCHANGE_AUDIENCES
from support.worker import start_worker

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
    start_at = since + 3.0
    outs = [tmp_path / f"{i}.json" for i in range(4)]
    workers = [
        start_worker(
            "app-audiences",
            "loop",
            out,
            client=SHORT_LIVED,
            cache_url=redis_server,
            threads=4,
            start_at=start_at,
            until=start_at + duration,
            interval=0.02,
        )
        for out in outs
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    reports = [json.loads(out.read_text()) for out in outs]
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
