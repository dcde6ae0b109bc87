"""``manage.py keycloak_doctor`` against the real Keycloak 26 and its demo realm."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest

from keycloak_jwt_auth.doctor.diagnose import FAIL, OK, WARN, diagnose
from support.realm import realm_secrets
from tests.conftest import run_command
from tests.keyring import pem

from .conftest import JwksServer, client_settings

pytestmark = [pytest.mark.keycloak, pytest.mark.redis]


@pytest.fixture
def shared_redis(redis_server: str, settings: Any) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": redis_server,
        }
    }


def doctor(*args: str) -> tuple[list[dict[str, Any]], str, int]:
    out, err, code = run_command("keycloak_doctor", "--json", *args)
    return json.loads(out), err, code


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {finding["check"]: finding["status"] for finding in report["findings"]}


def test_a_healthy_client_is_all_ok(real_keycloak: str, shared_redis: None) -> None:
    [report], _, code = doctor("--client", "default")
    assert code == 0
    assert statuses(report) == dict.fromkeys(
        ["server", "realm", "token", "clock", "refresh margin", "lock timeout", "roles",
         "client", "cache"],
        OK,
    )  # fmt: skip


def test_every_client_and_what_each_lacks(real_keycloak: str, shared_redis: None) -> None:
    reports, _, code = doctor()
    by_client = {report["client"]: statuses(report) for report in reports}
    assert list(by_client) == ["default", "hs512", "no-roles", "short-lived", "provisioning"]
    assert code == 0  # warnings only
    assert by_client["no-roles"]["roles"] == WARN
    assert "client" not in by_client["no-roles"]  # it may not read its own configuration
    [roles] = [f for r in reports if r["client"] == "no-roles" for f in r["findings"]
               if f["check"] == "roles"]  # fmt: skip
    assert "view-users" in roles["message"] and "Service accounts roles" in roles["hint"]
    # 10-second tokens: the 30 s margin is capped at a third, and the lock outlives the window.
    assert by_client["short-lived"]["refresh margin"] == WARN
    assert by_client["short-lived"]["lock timeout"] == WARN
    assert by_client["provisioning"]["token"] == OK  # manage-users, but no view-clients
    assert by_client["provisioning"]["roles"] == WARN


def test_a_wrong_secret_fails_with_keycloaks_words(real_keycloak: str, settings: Any) -> None:
    wrong = "a-wrong-secret-that-is-long-enough-for-hs256!"
    settings.KEYCLOAK_JWT_AUTH = client_settings(real_keycloak, CLIENT_SECRET=wrong)
    [report], err, code = doctor("--client", "default")
    assert code == 1 and "1 check(s) failed" in err
    [token] = [f for f in report["findings"] if f["check"] == "token"]
    assert token["status"] == FAIL
    assert "Signature on JWT token by client secret" in token["message"]
    assert "Credentials" in token["hint"]
    assert [f["check"] for f in report["findings"]] == ["server", "realm", "token", "cache"]


@pytest.mark.parametrize(("shift", "status"), [(-20, WARN), (-50, FAIL), (12, FAIL), (0, OK)])
def test_a_skewed_assertion_clock(real_keycloak: str, shift: float, status: str) -> None:
    findings = diagnose("default", clock=lambda: time.time() + shift)
    [clock] = [f for f in findings if f.check == "clock"]
    assert clock.status == status
    measured = float(re.search(r"is ([0-9.]+) s", clock.message).group(1))  # type: ignore[union-attr]
    assert abs(measured - abs(shift)) < 1.5


def test_no_realm_and_no_server(real_keycloak: str, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = client_settings(real_keycloak, REALM="no-such-realm", CLIENTS={})
    [report], _, code = doctor()
    assert code == 1
    assert report["findings"][0]["status"] == FAIL and "Realm does not exist" in str(report)
    settings.KEYCLOAK_JWT_AUTH = client_settings("http://127.0.0.1:9", CLIENTS={})
    [report], _, code = doctor()
    assert code == 1
    assert (
        report["findings"][0]["check"] == "server" and "refused" in report["findings"][0]["message"]
    )


def test_never_prints_a_secret_or_a_token(real_keycloak: str) -> None:
    out, err, _ = run_command("keycloak_doctor")
    out_json, _, _ = run_command("keycloak_doctor", "--json")
    for text in (out, err, out_json):
        assert "eyJ" not in text  # no JWT: neither a token nor an assertion
        for secret in realm_secrets().values():
            assert secret not in text


def test_a_key_client_and_its_jwks_url(
    keycloak_server: str, jwks_server: JwksServer, shared_redis: None, settings: Any
) -> None:
    """django-keys-eddsa may read its own configuration: the doctor finds its JWKS URL there
    and checks that it serves the current key."""
    eddsa = {
        "AUTH_METHOD": "private_key_jwt",
        "CLIENT_ID": "django-keys-eddsa",
        "CLIENT_SECRET": None,
        "PRIVATE_KEY": pem("EdDSA", 40),
        "ALGORITHM": "EdDSA",
    }
    settings.KEYCLOAK_JWT_AUTH = {**client_settings(keycloak_server), **eddsa, "CLIENTS": {}}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]  # the app serves the JWKS
    [report], err, code = doctor()
    findings = {f["check"]: f for f in report["findings"]}
    assert code == 0, err
    assert statuses(report)["token"] == statuses(report)["jwks"] == OK
    assert findings["client"]["message"] == "Signed JWT, signature algorithm EdDSA"
    url = f"{jwks_server.url}/django-keys-eddsa.json"  # its own JWKS URL (issue 18)
    assert findings["jwks"]["message"].startswith(f"{url} serves the current key")


def test_a_wrong_path_prefix_blames_server_url_not_realm(real_keycloak: str, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = client_settings(f"{real_keycloak}/auth")
    findings = {f.check: f for f in diagnose("default")}
    assert findings["server"].status == FAIL and "realm" not in findings
    assert findings["server"].message == (
        f"nothing answers at {real_keycloak}/auth/realms/demo/.well-known/openid-configuration "
        "(HTTP 404): no Keycloak at this path"
    )
    assert findings["server"].hint.startswith("Check the path of SERVER_URL: Keycloak 17 ")
