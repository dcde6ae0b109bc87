"""FakeKeycloak: what the app sees through it, its refusals in Keycloak's words, its faults."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    KeycloakAdmin,
    aget_access_token,
    get_access_token,
)
from keycloak_jwt_auth.client_auth import ASSERTION_TYPE
from keycloak_jwt_auth.exceptions import (
    AdminForbiddenError,
    AdminNotFoundError,
    InvalidTokenResponseError,
    TokenEndpointUnavailableError,
)
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak

from .loopback import Answer, Loopback

ROOT = Path(__file__).resolve().parents[1]


def claims_for(kc: FakeKeycloak, client_id: str, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": client_id, "sub": client_id, "aud": kc.issuer, "iat": now,
              "exp": now + 60, "jti": os.urandom(8).hex()}  # fmt: skip
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def post(kc: FakeKeycloak, assertion: str, **form: str) -> requests.Response:
    data = {"grant_type": "client_credentials", "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion, **form}  # fmt: skip
    return requests.post(kc.token_endpoint, data=data, timeout=10)


def pem(key: Any) -> str:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_the_app_against_the_fake(fake_keycloak: FakeKeycloak) -> None:
    ada = fake_keycloak.add_user("Ada", email="ada@example.com", firstName="Ada")
    fake_keycloak.add_user("grace", email="grace@example.com")
    fake_keycloak.add_group("engineers", members=[ada])
    admin = KeycloakAdmin()
    assert [u["username"] for u in admin.users(search="ADA")] == ["ada"]
    assert admin.users_count() == 2
    assert admin.user(ada["id"])["email"] == "ada@example.com"
    [group] = admin.groups()
    assert [m["username"] for m in admin.group_members(group["id"])] == ["ada"]
    assert {r["name"] for r in admin.realm_roles()} >= {"offline_access", "default-roles-demo"}
    [client] = admin.clients(client_id="django-service")
    assert dict(client)["clientAuthenticatorType"] == "client-secret-jwt"
    assert fake_keycloak.token_requests == 1  # one token served every call
    claims = fake_keycloak.verify_token(get_access_token())
    assert claims["azp"] == "django-service"
    assert "view-users" in claims["resource_access"]["realm-management"]["roles"]


def test_admin_api_refusals_in_keycloaks_words(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    fake_keycloak.add_client("no-roles", secret="s" * 40, roles=())
    settings.KEYCLOAK_JWT_AUTH = {
        **fake_keycloak.settings(),
        "CLIENTS": {"no-roles": fake_keycloak.settings("no-roles")},
    }
    with pytest.raises(AdminForbiddenError) as forbidden:
        KeycloakAdmin("no-roles").users()
    assert forbidden.value.body == {"error": "HTTP 403 Forbidden"}
    with pytest.raises(AdminNotFoundError) as missing:
        KeycloakAdmin().user("nobody")
    assert missing.value.body == {"error": "User not found"}
    bad = requests.get(f"{fake_keycloak.url}/admin/realms/demo/users", timeout=5,
                       headers={"Authorization": "Bearer forged"})  # fmt: skip
    assert (bad.status_code, bad.json()) == (401, {"error": "HTTP 401 Unauthorized"})
    other = requests.get(f"{fake_keycloak.url}/realms/other/.well-known/openid-configuration")
    assert (other.status_code, other.json()) == (404, {"error": "Realm does not exist"})


def test_an_expired_token_is_refused_by_the_admin_api(fake_keycloak: FakeKeycloak) -> None:
    bearer = {"Authorization": f"Bearer {get_access_token()}"}
    users = f"{fake_keycloak.url}/admin/realms/demo/users"
    assert requests.get(users, headers=bearer, timeout=5).status_code == 200
    fake_keycloak.clock = lambda: time.time() + 3600  # an hour later, for the fake
    assert requests.get(users, headers=bearer, timeout=5).status_code == 401


@pytest.mark.parametrize(
    ("change", "status", "error", "description"),
    [
        ({}, 200, None, None),
        ({"aud": "https://elsewhere/realms/demo"}, 400, "invalid_client", "Invalid token audience"),
        ({"aud": ["ISSUER", "TOKEN"]}, 400, "invalid_client", "Multiple audiences not allowed"),
        ({"aud": "TOKEN"}, 200, None, None),
        ({"exp": None}, 400, "invalid_client", "Token exp claim is required"),
        ({"exp": -5}, 400, "invalid_client", "Token is not active"),
        ({"nbf": 30}, 400, "invalid_client", "Token is not active"),
        ({"iat": -75}, 400, "invalid_client",
         "Token was issued too far in the past to be used now"),
        ({"iat": 30}, 400, "invalid_client", "Token was issued in the future"),
        ({"iat": 10}, 200, None, None),
        ({"iat": None}, 200, None, None),
        ({"jti": None}, 400, "invalid_client", "Token jti claim is required"),
        ({"sub": "someone-else"}, 401, "invalid_client",
         "Invalid client or Invalid client credentials"),
        ({"iss": "someone-else"}, 401, "invalid_client",
         "Invalid client or Invalid client credentials"),
    ],
)  # fmt: skip
def test_assertion_claims_are_checked_as_keycloak_does(
    fake_keycloak: FakeKeycloak, change: dict[str, Any], status: int, error: str, description: str
) -> None:
    client = fake_keycloak.client()
    now = int(time.time())
    relative = {k: now + v for k, v in change.items() if k in ("exp", "nbf", "iat") and v}
    named = {"ISSUER": fake_keycloak.issuer, "TOKEN": fake_keycloak.token_endpoint}
    aud = change.get("aud")
    audience = {
        "aud": [named[a] for a in aud] if isinstance(aud, list) else named.get(str(aud), aud)
    }
    claims = claims_for(fake_keycloak, client.client_id, **{**change, **relative})
    if aud is not None:
        claims.update(audience)
    assert client.secret is not None
    answer = post(fake_keycloak, jwt.encode(claims, client.secret, "HS256"))
    assert answer.status_code == status
    if error:
        assert answer.json() == {"error": error, "error_description": description}


def test_signature_algorithm_client_and_replay(fake_keycloak: FakeKeycloak) -> None:
    client = fake_keycloak.client()
    assert client.secret is not None
    claims = claims_for(fake_keycloak, client.client_id)
    wrong = post(fake_keycloak, jwt.encode(claims, "w" * 40, "HS256"))
    assert wrong.status_code == 400 and wrong.json()["error"] == "unauthorized_client"
    assert "Signature on JWT token by client secret  failed validation" in wrong.text
    hs512 = post(fake_keycloak, jwt.encode(claims, client.secret * 2, "HS512"))
    assert hs512.json()["error_description"] == "Invalid signature algorithm"
    good = jwt.encode(claims, client.secret, "HS256")
    assert post(fake_keycloak, good, client_id=client.client_id).status_code == 200
    assert post(fake_keycloak, good).json()["error_description"] == "Token reuse detected"
    other = post(fake_keycloak, jwt.encode(claims_for(fake_keycloak, client.client_id),
                                           client.secret, "HS256"), client_id="x")  # fmt: skip
    assert other.json()["error_description"] == (
        "client_id parameter does not match authenticated client"
    )
    garbage = post(fake_keycloak, "not-a-jwt", client_id=client.client_id)
    assert garbage.json()["error"] == "unauthorized_client"
    assert post(fake_keycloak, "not-a-jwt").status_code == 401
    assert fake_keycloak.token_requests == 7


def test_private_key_clients_with_keys_or_a_jwks_url(fake_keycloak: FakeKeycloak) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    fake_keycloak.add_client("rsa", secret=None, algorithm="PS256", private_key=pem(rsa_key))
    signed = jwt.encode(claims_for(fake_keycloak, "rsa"), pem(rsa_key), "PS256")
    assert post(fake_keycloak, signed).status_code == 200
    by_other_key = jwt.encode(claims_for(fake_keycloak, "rsa"), pem(ec_key), "ES256")
    assert post(fake_keycloak, by_other_key).json()["error_description"] == (
        "Invalid signature algorithm"
    )
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key()))
    with Loopback() as jwks_host:
        jwks_host.route("/jwks", Answer(200, json.dumps({"keys": [{**jwk, "kid": "k1"}]}).encode()))
        fake_keycloak.add_client(FakeClient("ec", algorithm=None, jwks_url=f"{jwks_host.url}/jwks"))
        ok = jwt.encode(
            claims_for(fake_keycloak, "ec"), pem(ec_key), "ES256", headers={"kid": "k1"}
        )
        assert post(fake_keycloak, ok).status_code == 200
        unknown_kid = jwt.encode(claims_for(fake_keycloak, "ec"), pem(ec_key), "ES256",
                                 headers={"kid": "k2"})  # fmt: skip
        assert post(fake_keycloak, unknown_kid).json()["error_description"] == (
            "Unable to load public key"
        )
        forged = jwt.encode(claims_for(fake_keycloak, "ec"),
                            pem(ec.generate_private_key(ec.SECP256R1())), "ES256")  # fmt: skip
        refused = post(fake_keycloak, forged).json()
        assert refused["error"] == "invalid_client"  # as Keycloak 26.7 answers a key client
        assert "Signature on JWT token failed validation" in refused["error_description"]
    assert fake_keycloak.settings("rsa")["AUTH_METHOD"] == "private_key_jwt"


def test_faults_and_recovery(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(RETRIES=1, TIMEOUT=0.5)
    with fake_keycloak.failing("down"), pytest.raises(TokenEndpointUnavailableError):
        get_access_token()
    with fake_keycloak.failing("5xx"), pytest.raises(TokenEndpointUnavailableError) as info:
        get_access_token()
    assert info.value.status == 503
    with fake_keycloak.failing("html"), pytest.raises(InvalidTokenResponseError):
        get_access_token()
    fake_keycloak.slow_seconds = 1.0
    with fake_keycloak.failing("slow"), pytest.raises(TokenEndpointUnavailableError) as slow:
        get_access_token()
    assert "timed out" in str(slow.value)
    assert get_access_token()  # healthy again, on the same port
    with pytest.raises(ValueError, match="fault must be one of"):
        fake_keycloak.fail("flaky")
    assert fake_keycloak.token_requests == 2 + 1 + 2 + 1  # 5xx, html, slow, healthy; down: none


def test_async_callers_and_httpx(fake_keycloak: FakeKeycloak) -> None:
    fake_keycloak.add_user("ada")

    async def main() -> list[Any]:
        admin = AsyncKeycloakAdmin()
        await aget_access_token()
        return await admin.users()

    assert [u["username"] for u in asyncio.run(main())] == ["ada"]
    assert fake_keycloak.token_requests == 1


def test_a_subprocess_reaches_it(fake_keycloak: FakeKeycloak) -> None:
    conf = fake_keycloak.settings()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "KEYCLOAK_SERVER_URL": conf["SERVER_URL"],
        "KEYCLOAK_CLIENT_ID": conf["CLIENT_ID"],
        "KEYCLOAK_CLIENT_SECRET": conf["CLIENT_SECRET"],
        "CACHE_URL": "locmemcache://",
    }
    done = subprocess.run(
        [sys.executable, "manage.py", "fetch_token", "--decode"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["azp"] == "django-service"
    assert fake_keycloak.token_requests == 1


def test_settings_and_repr_hide_nothing_they_should_not_show() -> None:
    kc = FakeKeycloak(clients=[FakeClient("svc", secret="top-secret-value-0123456789abcdef")])
    assert "top-secret" not in repr(kc.client()) and "stopped" in repr(kc)
    with kc:
        assert kc.settings(TIMEOUT=1) == {
            "SERVER_URL": kc.url,
            "REALM": "demo",
            "CLIENT_ID": "svc",
            "CLIENT_SECRET": "top-secret-value-0123456789abcdef",
            "ALGORITHM": "HS256",
            "TIMEOUT": 1,
        }
        discovery = requests.get(f"{kc.issuer}/.well-known/openid-configuration", timeout=5)
        assert discovery.json()["token_endpoint"] == kc.token_endpoint


def test_form_errors_and_admin_corners(fake_keycloak: FakeKeycloak) -> None:
    form = {"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x"}
    answers = [
        requests.post(fake_keycloak.token_endpoint, data=data, timeout=5).json()
        for data in (
            form,
            {"grant_type": "client_credentials"},
            {"grant_type": "client_credentials", "client_assertion_type": "basic"},
        )
    ]
    assert [a["error_description"] for a in answers] == [
        "Missing form parameter: grant_type",
        "Parameter client_assertion_type is missing",
        f"Parameter client_assertion_type has value 'basic' but expected is '{ASSERTION_TYPE}'",
    ]
    client = fake_keycloak.client()
    assert client.secret is not None
    signed = jwt.encode(claims_for(fake_keycloak, client.client_id), client.secret, "HS256")
    password = post(fake_keycloak, signed, grant_type="password").json()
    assert password["error"] == "unsupported_grant_type"
    client.service_accounts = False
    signed = jwt.encode(claims_for(fake_keycloak, client.client_id), client.secret, "HS256")
    assert post(fake_keycloak, signed).json() == {
        "error": "unauthorized_client",
        "error_description": "Client not enabled to retrieve service account",
    }
    client.service_accounts = True
    fake_keycloak.add_user("ada", email="ada@example.com")
    fake_keycloak.add_user("adam")
    admin = KeycloakAdmin()
    assert admin.realm()["realm"] == "demo"
    assert [u["username"] for u in admin.users(username="ada", exact=True)] == ["ada"]
    assert [u["username"] for u in admin.users(username="ada")] == ["ada", "adam"]
    with pytest.raises(AdminNotFoundError):
        admin.group_members("no-such-group")
    with pytest.raises(AdminNotFoundError):
        admin.get("nothing-here")
    nowhere = requests.get(f"{fake_keycloak.url}/elsewhere", timeout=5)
    assert (nowhere.status_code, nowhere.json()) == (404, {"error": "HTTP 404 Not Found"})
    jwks_client = fake_keycloak.add_client("by-url", algorithm="RS256", jwks_url="https://x/jwks")
    assert jwks_client.representation()["attributes"]["use.jwks.url"] == "true"
