"""DPoP against the real Keycloak: the demo realm's django-dpop client has "Require DPoP bound
tokens" (10 s tokens). The token is bound to the configured key, the Admin API takes it with a
fresh proof, and refuses it as Bearer, with a replayed proof or with another key's proof; four
processes sharing Redis make one token request per lifetime (counted at Keycloak)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    InvalidRequestError,
    KeycloakAdmin,
    auth_headers,
    get_token_manager,
)
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner
from keycloak_jwt_auth.keys import load_private_key, public_jwk, thumbprint
from support.keycloak_events import token_events
from support.realm import realm_secrets
from support.worker import start_worker
from tests.keyring import pem

from .conftest import client_settings

pytestmark = pytest.mark.keycloak

CLIENT = "django-dpop"
LIFETIME = 10.0
RENEWAL_PERIOD = LIFETIME * 2 / 3


def dpop_client(**extra: Any) -> dict[str, Any]:
    return {"CLIENT_ID": CLIENT, "CLIENT_SECRET": realm_secrets()[CLIENT], **extra}


@pytest.fixture
def dpop_keycloak(keycloak_server: str, settings: Any) -> str:
    base = client_settings(keycloak_server)
    settings.KEYCLOAK_JWT_AUTH = {
        **base,
        "CLIENTS": {
            **base["CLIENTS"],
            "dpop": dpop_client(DPOP_KEY=pem("ES256")),
            "dpop-eddsa": dpop_client(DPOP_KEY=pem("EdDSA")),
            "no-key": dpop_client(),
        },
    }
    return keycloak_server


@pytest.mark.parametrize(("client", "algorithm"), [("dpop", "ES256"), ("dpop-eddsa", "EdDSA")])
def test_the_token_is_bound_to_the_configured_key(
    dpop_keycloak: str, client: str, algorithm: str
) -> None:
    token = get_token_manager(client).get_token(force_refresh=True)
    expected = thumbprint(public_jwk(load_private_key(pem(algorithm)), algorithm))
    assert token.token_type == "DPoP"
    assert token.unverified_claims()["cnf"] == {"jkt": expected, "kc-jkt-type": "DPoP"}


def test_a_client_that_requires_dpop_refuses_a_request_without_a_proof(
    dpop_keycloak: str,
) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        get_token_manager("no-key").get_token()
    assert refused.value.error_description == "DPoP proof is missing"


def test_users_listed_sync_and_async(dpop_keycloak: str) -> None:
    users = KeycloakAdmin("dpop").users(max=5)
    assert users and all("username" in u for u in users)
    async_users = asyncio.run(AsyncKeycloakAdmin("dpop").users(max=5))
    assert [u["id"] for u in async_users] == [u["id"] for u in users]
    assert get_token_manager("dpop").fetch_count == 1


def test_bearer_replayed_and_foreign_proofs_are_refused(dpop_keycloak: str) -> None:
    url = f"{dpop_keycloak}/admin/realms/demo/users?max=1"
    headers = auth_headers("GET", url, client="dpop")
    token = headers["Authorization"].removeprefix("DPoP ")
    assert requests.get(url, headers=headers, timeout=10).status_code == 200
    replayed = requests.get(url, headers=headers, timeout=10)
    assert replayed.status_code == 401
    assert "WWW-Authenticate" not in replayed.headers  # Keycloak's Admin API says no more
    bearer = requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert bearer.status_code == 401
    foreign = DPoPSigner(pem("ES256", 1), "ES256").proof("GET", url, access_token=token)
    stolen = {"Authorization": f"DPoP {token}", "DPoP": foreign}
    assert requests.get(url, headers=stolen, timeout=10).status_code == 401
    fresh = auth_headers("GET", url, client="dpop")
    assert requests.get(url, headers=fresh, timeout=10).status_code == 200


@pytest.mark.redis
def test_4_processes_share_one_bound_token_per_lifetime(
    dpop_keycloak: str, redis_server: str, tmp_path: Path
) -> None:
    redis.Redis.from_url(redis_server).flushdb()
    duration = 16.0  # renewals at about 6.7 and 13.3 s: 3 tokens, far from any boundary
    since = time.time()
    start_at = since + 3.0
    outs = [tmp_path / f"{i}.json" for i in range(4)]
    workers = [
        start_worker(
            "app-dpop",
            "loop",
            out,
            client=CLIENT,
            cache_url=redis_server,
            app_settings={"DPOP_KEY": pem("ES256")},
            threads=2,
            start_at=start_at,
            until=start_at + duration,
            interval=0.05,
        )
        for out in outs
    ]
    for worker in workers:
        assert worker.wait(timeout=120) == 0
    reports = [json.loads(out.read_text()) for out in outs]
    events = token_events(CLIENT, since, time.time())
    for report in reports:
        assert report["errors"] == 0, report["error_samples"]
        assert report["calls"] > 0 and report["expired_served"] == 0
    expected = 1 + int(duration // RENEWAL_PERIOD)
    assert len(events) == expected, [e["time"] for e in events]
    issued = {e["details"]["token_id"] for e in events}
    assert {jti for r in reports for jti in r["tokens"]} == issued
    assert sum(r["app_fetches"] for r in reports) == expected
