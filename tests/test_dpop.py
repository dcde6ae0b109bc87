"""DPoP (RFC 9449): the proofs, the settings, bound tokens, the token flow with its nonce retry,
and every call through the app, against FakeKeycloak (which checks proofs as Keycloak does)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import requests
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.test import override_settings

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    HttpxServiceAccountAuth,
    KeycloakAdmin,
    ServiceAccountAuth,
    aauth_headers,
    auth_headers,
)
from keycloak_jwt_auth.client_auth import client_authentication
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner
from keycloak_jwt_auth.clients import clients, get_client_config, get_token_manager
from keycloak_jwt_auth.doctor.diagnose import diagnose
from keycloak_jwt_auth.exceptions import (
    ConfigurationError,
    InvalidRequestError,
    InvalidTokenResponseError,
    OAuthError,
)
from keycloak_jwt_auth.http.steps import Reply, Send
from keycloak_jwt_auth.keys import load_private_key, public_jwk, thumbprint
from keycloak_jwt_auth.settings.rules import client_problems
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak
from keycloak_jwt_auth.tokens.flow import token_flow
from keycloak_jwt_auth.tokens.store import token_cache_key
from keycloak_jwt_auth.tokens.token import AccessToken

from .conftest import TOKEN_URL
from .keyring import key_settings, pem

BASE = settings.KEYCLOAK_JWT_AUTH


def jkt_of(key_pem: str) -> str:
    return thumbprint(public_jwk(load_private_key(key_pem), "ES256"))


def decoded(proof: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header = jwt.get_unverified_header(proof)
    key = jwt.PyJWK(header["jwk"]).key
    claims = jwt.decode(proof, key, algorithms=[header["alg"]])
    return header, claims


def ath(token: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(token.encode()).digest()).rstrip(b"=").decode()


def bound_jwt(jkt: str | None) -> str:
    claims: dict[str, Any] = {"sub": "service-account"}
    if jkt is not None:
        claims["cnf"] = {"jkt": jkt, "kc-jkt-type": "DPoP"}
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


# --- the proofs -----------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "EdDSA", "PS256"])
def test_a_proof_names_the_request_and_carries_only_the_public_key(algorithm: str) -> None:
    signer = DPoPSigner(pem(algorithm), algorithm)
    url = "https://api.test:8443/Users/list?first=0#top"
    header, claims = decoded(signer.proof("get", url, access_token="the-token"))
    assert header["typ"] == "dpop+jwt" and header["alg"] == algorithm
    assert not {"d", "p", "q", "kid"} & set(header["jwk"])
    assert thumbprint(header["jwk"]) == signer.jkt
    assert claims["htm"] == "GET" and claims["htu"] == "https://api.test:8443/Users/list"
    assert claims["ath"] == ath("the-token") and "nonce" not in claims
    token_proof = decoded(signer.proof("POST", TOKEN_URL))[1]
    assert "ath" not in token_proof and token_proof["jti"] != claims["jti"]
    assert repr(signer) == f"DPoPSigner(algorithm={algorithm!r}, jkt={signer.jkt!r})"


def test_a_nonce_is_kept_per_origin() -> None:
    signer = DPoPSigner(pem("ES256"), "ES256")
    assert signer.learn_nonce("https://a.test/x", {"dpop-nonce": "n1"})
    assert not signer.learn_nonce("https://A.test/y", {"DPoP-Nonce": "n1"})  # nothing new
    assert not signer.learn_nonce("https://a.test/y", {})
    assert decoded(signer.proof("GET", "https://a.test/other"))[1]["nonce"] == "n1"
    assert "nonce" not in decoded(signer.proof("GET", "https://b.test/"))[1]
    challenge = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "n2"}
    assert signer.asks_for_nonce("https://a.test/x", 401, challenge)
    assert not signer.asks_for_nonce("https://a.test/x", 401, challenge)  # the same nonce again
    assert not signer.asks_for_nonce("https://c.test/", 401, {"WWW-Authenticate": "Bearer"})


# --- settings --------------------------------------------------------------------------------


def dpop_config(**change: Any) -> Any:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, **change}):
        return get_client_config()


@pytest.mark.parametrize(
    ("algorithm", "expected"), [("ES256", "ES256"), ("RS256", "PS256"), ("EdDSA", "EdDSA")]
)
def test_the_proof_algorithm_follows_the_key(algorithm: str, expected: str) -> None:
    config = dpop_config(DPOP_KEY=pem(algorithm))
    assert config.dpop_algorithm == expected
    assert pem(algorithm) not in repr(config)


def test_the_key_file_is_read_and_its_problems_named(tmp_path: Path) -> None:
    key_file = tmp_path / "dpop.pem"
    key_file.write_text(pem("ES256"))
    assert dpop_config(DPOP_KEY_FILE=key_file).dpop_key == pem("ES256")
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "DPOP_KEY_FILE": tmp_path / "none"}):
        [problem] = client_problems("default")
        assert (problem.id, problem.key) == ("E030", "DPOP_KEY_FILE")
        with pytest.raises(ConfigurationError, match="DPOP_KEY_FILE"):
            get_client_config()
    secret = "a-symmetric-secret-is-not-a-dpop-key"
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "DPOP_KEY": secret}):
        [problem] = client_problems("default")
        assert problem.id == "E030" and secret not in problem.text + problem.hint
    both = {**BASE, "DPOP_KEY": pem("ES256"), "DPOP_KEY_FILE": key_file}
    with override_settings(KEYCLOAK_JWT_AUTH=both):
        assert [p.id for p in client_problems("default")] == ["E030"]


def test_the_client_authentication_key_is_not_a_dpop_key() -> None:
    same = {**BASE, **key_settings("ES256"), "DPOP_KEY": pem("ES256")}
    with override_settings(KEYCLOAK_JWT_AUTH=same):
        assert [p.id for p in client_problems("default")] == ["W030"]
    other = {**BASE, **key_settings("ES256"), "DPOP_KEY": pem("ES256", 1)}
    with override_settings(KEYCLOAK_JWT_AUTH=other):
        assert client_problems("default") == []


# --- bound tokens and the cache ------------------------------------------------------------------


def checked(value: str, token_type: str, bound_to: str | None) -> AccessToken:
    fields = {"issued_at": time.time(), "expires_in": 300, "scope": None}
    return AccessToken.checked(value, token_type=token_type, bound_to=bound_to, **fields)


def test_a_dpop_client_takes_only_tokens_bound_to_its_key() -> None:
    jkt = jkt_of(pem("ES256"))
    token = checked(bound_jwt(jkt), "DPoP", jkt)
    assert token.token_type == "DPoP" and token.authorization.startswith("DPoP ")
    assert checked("opaque-token", "dpop", jkt).token_type == "DPoP"  # not a JWT: not checked
    with pytest.raises(ValueError, match="ignored the proof"):
        checked(bound_jwt(jkt), "Bearer", jkt)
    with pytest.raises(ValueError, match="not the DPoP key's thumbprint"):
        checked(bound_jwt("another-key"), "DPoP", jkt)
    with pytest.raises(ValueError, match="no cnf.jkt"):
        checked(bound_jwt(None), "DPoP", jkt)
    with pytest.raises(ValueError, match="instead of Bearer"):
        checked(bound_jwt(jkt), "DPoP", None)  # a Bearer client never takes a DPoP token
    stored = AccessToken.from_json(token.to_json(), bound_to=jkt)
    assert stored == token and "BEGIN" not in token.to_json()
    with pytest.raises(ValueError):
        AccessToken.from_json(token.to_json(), bound_to=jkt_of(pem("ES256", 1)))


def test_the_cache_key_changes_with_the_dpop_key() -> None:
    config = dpop_config()
    keys = {
        token_cache_key(config),
        token_cache_key(config, jkt=jkt_of(pem("ES256"))),
        token_cache_key(config, jkt=jkt_of(pem("ES256", 1))),
    }
    assert len(keys) == 3


# --- the token flow, pumped by hand -----------------------------------------------------------


def reply(status: int, body: dict[str, Any], **headers: str) -> Reply:
    headers = {"Content-Type": "application/json", **headers}
    return Reply(status, headers, json.dumps(body).encode(), TOKEN_URL)


NONCE_REFUSAL = {"error": "use_dpop_nonce", "error_description": "nonce wanted"}


@pytest.fixture
def dpop_setup() -> Iterator[tuple[Any, DPoPSigner]]:
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "DPOP_KEY": pem("ES256")}):
        config = get_client_config()
        yield config, DPoPSigner(pem("ES256"), "ES256")


def test_each_token_request_carries_a_proof(dpop_setup: tuple[Any, DPoPSigner]) -> None:
    config, signer = dpop_setup
    flow = token_flow(config, client_authentication(config), dpop=signer)
    send = next(flow)
    assert isinstance(send, Send)
    claims = decoded(send.headers["DPoP"])[1]
    assert (claims["htm"], claims["htu"]) == ("POST", TOKEN_URL)
    body = {"access_token": bound_jwt(signer.jkt), "expires_in": 60, "token_type": "DPoP"}
    with pytest.raises(StopIteration) as done:
        flow.send(reply(200, body))
    assert done.value.value.token.token_type == "DPoP"


def test_a_nonce_refusal_gets_one_more_request(dpop_setup: tuple[Any, DPoPSigner]) -> None:
    config, signer = dpop_setup
    flow = token_flow(config, client_authentication(config), dpop=signer)
    first = next(flow)
    second = flow.send(reply(400, NONCE_REFUSAL, **{"DPoP-Nonce": "n-1"}))
    assert isinstance(first, Send) and isinstance(second, Send)
    assert decoded(second.headers["DPoP"])[1]["nonce"] == "n-1"
    assertions = [jwt.decode(s.form["client_assertion"], options={"verify_signature": False})
                  for s in (first, second)]  # fmt: skip
    assert assertions[0]["jti"] != assertions[1]["jti"]  # a fresh assertion too
    with pytest.raises(OAuthError, match="nonce wanted"):
        flow.send(reply(400, NONCE_REFUSAL, **{"DPoP-Nonce": "n-2"}))  # never a second retry


def test_a_nonce_refusal_without_a_new_nonce_is_final(dpop_setup: tuple[Any, DPoPSigner]) -> None:
    config, signer = dpop_setup
    flow = token_flow(config, client_authentication(config), dpop=signer)
    next(flow)
    with pytest.raises(OAuthError, match="use_dpop_nonce"):
        flow.send(reply(400, NONCE_REFUSAL))


def test_a_bearer_answer_to_a_dpop_client_is_refused(dpop_setup: tuple[Any, DPoPSigner]) -> None:
    config, signer = dpop_setup
    flow = token_flow(config, client_authentication(config), dpop=signer)
    next(flow)
    body = {"access_token": bound_jwt(None), "expires_in": 60, "token_type": "Bearer"}
    with pytest.raises(InvalidTokenResponseError, match="ignored the proof"):
        flow.send(reply(200, body))


# --- every call, against FakeKeycloak ---------------------------------------------------------


@pytest.fixture
def dpop_keycloak(fake_keycloak: FakeKeycloak, settings: Any) -> FakeKeycloak:
    """The fake with a client that requires DPoP, and the app set up for it."""
    fake_keycloak.add_client(FakeClient("django-dpop", secret="d" * 40, dpop_bound=True))
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("django-dpop", DPOP_KEY=pem("ES256"))
    fake_keycloak.add_user("ada", email="ada@example.com")
    return fake_keycloak


def test_a_client_that_requires_dpop_needs_a_key(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    fake_keycloak.add_client(FakeClient("django-dpop", secret="d" * 40, dpop_bound=True))
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("django-dpop")
    with pytest.raises(InvalidRequestError, match="DPoP proof is missing"):
        clients["default"].manager.get_token()


def test_bound_tokens_list_users_sync_and_async(dpop_keycloak: FakeKeycloak) -> None:
    token = clients["default"].manager.get_token()
    assert token.token_type == "DPoP"
    assert dpop_keycloak.verify_token(token.value)["cnf"]["jkt"] == jkt_of(pem("ES256"))
    assert [u["username"] for u in KeycloakAdmin().users()] == ["ada"]
    assert [u["username"] for u in asyncio.run(AsyncKeycloakAdmin().users())] == ["ada"]
    url = f"{dpop_keycloak.admin_url}/users"
    assert requests.get(url, auth=ServiceAccountAuth(), timeout=5).status_code == 200
    with httpx.Client(auth=HttpxServiceAccountAuth()) as client:
        assert client.get(url).status_code == 200
    assert dpop_keycloak.token_requests == 1


def test_the_same_token_as_bearer_or_with_a_bad_proof_is_refused(
    dpop_keycloak: FakeKeycloak,
) -> None:
    url = f"{dpop_keycloak.admin_url}/users?max=1"
    headers = auth_headers("GET", url)
    assert set(headers) == {"Authorization", "DPoP"}
    assert headers["Authorization"].startswith("DPoP ")
    assert requests.get(url, headers=headers, timeout=5).status_code == 200
    assert requests.get(url, headers=headers, timeout=5).status_code == 401  # replayed
    token = headers["Authorization"].removeprefix("DPoP ")
    bearer = {"Authorization": f"Bearer {token}"}
    assert requests.get(url, headers=bearer, timeout=5).status_code == 401
    foreign = DPoPSigner(pem("ES256", 1), "ES256").proof("GET", url, access_token=token)
    foreign_headers = {"Authorization": f"DPoP {token}", "DPoP": foreign}
    assert requests.get(url, headers=foreign_headers, timeout=5).status_code == 401
    other_url = auth_headers("GET", f"{dpop_keycloak.admin_url}/groups")
    assert requests.get(url, headers=other_url, timeout=5).status_code == 401
    assert asyncio.run(aauth_headers("GET", url))["Authorization"] == headers["Authorization"]


def test_nonce_mode_retries_once_per_request(dpop_keycloak: FakeKeycloak) -> None:
    dpop_keycloak.dpop.nonce_mode = True
    assert [u["username"] for u in KeycloakAdmin().users()] == ["ada"]
    assert dpop_keycloak.token_requests == 2  # the nonce answer, and the token
    assert dpop_keycloak.dpop.nonce_challenges == 1  # the Admin API's nonce is the same
    dpop_keycloak.dpop.rotate_nonce()
    assert [u["username"] for u in asyncio.run(AsyncKeycloakAdmin().users())] == ["ada"]
    assert dpop_keycloak.dpop.nonce_challenges == 2  # the call's 401, then its retry
    assert dpop_keycloak.token_requests == 2  # the same token: a nonce is no reason to drop it
    url = f"{dpop_keycloak.admin_url}/users"
    dpop_keycloak.dpop.rotate_nonce()
    assert requests.get(url, auth=ServiceAccountAuth(), timeout=5).status_code == 200
    dpop_keycloak.dpop.rotate_nonce()
    with httpx.Client(auth=HttpxServiceAccountAuth()) as client:
        assert client.get(url).status_code == 200
    assert dpop_keycloak.dpop.nonce_challenges == 4


# --- the doctor ---------------------------------------------------------------------------------


def doctor(client: str = "default") -> dict[str, tuple[str, str, str]]:
    return {f.check: (f.status, f.message, f.hint) for f in diagnose(client)}


def test_the_doctor_reports_the_binding_and_the_clients_requirement(
    dpop_keycloak: FakeKeycloak, settings: Any
) -> None:
    findings = doctor()
    assert findings["client"][0] == "OK"  # read with a DPoP token and a proof
    status, message, _ = findings["dpop"]
    assert status == "OK" and jkt_of(pem("ES256")) in message and "requires DPoP" in message
    dpop_keycloak.client("django-dpop").dpop_bound = False
    status, message, hint = doctor()["dpop"]
    assert status == "WARN" and "Require DPoP bound tokens" in hint
    dpop_keycloak.client("django-dpop").dpop_bound = True
    dpop_keycloak.clock = lambda: time.time() + 20  # this host 20 s behind: fine for the
    findings = doctor()  # assertions (60 s), at the edge for the proofs (25 s)
    assert findings["clock"][0] == "WARN" and findings["dpop"][0] == "FAIL"


def test_the_doctor_names_the_missing_key(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    fake_keycloak.add_client(FakeClient("django-dpop", secret="d" * 40, dpop_bound=True))
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("django-dpop")
    findings = doctor()
    assert findings["token"][0] == "FAIL" and "DPOP_KEY_FILE" in findings["token"][2]
    assert "dpop" not in findings
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings()
    assert "dpop" not in doctor()  # a Bearer client: nothing to say


def test_keycloak_keys_generates_a_dpop_key() -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("keycloak_keys", "generate", "--dpop", stdout=out, stderr=err)
    assert dpop_config(DPOP_KEY=out.getvalue()).dpop_algorithm == "ES256"
    assert "DPOP_KEY_FILE" in err.getvalue() and "PRIVATE KEY" not in err.getvalue()
    eddsa = io.StringIO()
    call_command("keycloak_keys", "generate", "--dpop", "--algorithm", "EdDSA", stdout=eddsa)
    assert dpop_config(DPOP_KEY=eddsa.getvalue()).dpop_algorithm == "EdDSA"


def test_the_demo_page_shows_the_token_type_and_binding(
    dpop_keycloak: FakeKeycloak, admin_client: Any
) -> None:
    status = admin_client.get("/api/token/").json()
    assert (status["token_type"], status["bound_to"]) == ("DPoP", jkt_of(pem("ES256")))
    page = admin_client.get("/").content.decode()
    assert f"DPoP (bound to the DPoP key {jkt_of(pem('ES256'))})" in page


def test_a_bearer_token_planted_under_a_dpop_clients_key_is_a_miss(
    dpop_keycloak: FakeKeycloak,
) -> None:
    manager = get_token_manager()
    planted = AccessToken(value="planted.bearer.token", expires_at=time.time() + 3600)
    caches[manager.config.cache_alias].set(manager.store.key, planted.to_json(), 3600)
    assert manager.peek() is None  # not bound to our key: never served
    token = manager.get_token()
    assert token.token_type == "DPoP" and token.value != planted.value
    assert dpop_keycloak.token_requests == 1  # the planted value cost one request, no more
