"""Federated client authentication against the real Keycloak: the demo realm's identity provider
``test-kubernetes`` (type ``kubernetes``, issuer ``KEYCLOAK_TEST_ISSUER_URL``, see
scripts/keycloak.sh) trusts the test issuer served here, and its client ``django-federated``
(``federated-jwt``) authenticates with that issuer's service-account tokens, written to a file
the way the kubelet writes a projected volume. No secret and no key in the settings."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from django.test import override_settings

from keycloak_jwt_auth import (
    AssertionUnusableError,
    InvalidClientError,
    OAuthError,
    get_access_token,
)
from keycloak_jwt_auth.doctor.diagnose import OK, diagnose
from keycloak_jwt_auth.testing import FakeKeycloak
from keycloak_jwt_auth.testing.issuer import ProjectedToken, TestIssuer
from support.keycloak_events import token_events

from .conftest import KEYCLOAK_PORT, KEYCLOAK_URL, client_settings

pytestmark = pytest.mark.keycloak

CLIENT = "django-federated"
NAMESPACE = "demo"
ISSUER_PORT = int(os.environ.get("KEYCLOAK_TEST_ISSUER_PORT", str(KEYCLOAK_PORT + 9)))
REALM_ISSUER = f"{KEYCLOAK_URL}/realms/demo"
ROTATIONS, CALLS_PER_ROTATION = 5, 4


@pytest.fixture(scope="module")
def issuer(keycloak_server: str) -> Iterator[TestIssuer]:
    with TestIssuer(port=ISSUER_PORT) as test_issuer:
        known_to_keycloak(test_issuer)
        yield test_issuer


def known_to_keycloak(issuer: TestIssuer) -> None:
    """Until Keycloak knows this issuer's key. Each run makes a new key, and Keycloak reads an
    issuer's keys at most every 10 s: a run right after another waits that long, once."""
    token = issuer.service_account_token(NAMESPACE, CLIENT, REALM_ISSUER)
    form = {"grant_type": "client_credentials", "client_assertion": token}
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    deadline = time.monotonic() + 30
    while (
        requests.post(
            f"{REALM_ISSUER}/protocol/openid-connect/token", data=form, timeout=10
        ).status_code
        != 200
    ):
        if time.monotonic() > deadline:
            pytest.fail("Keycloak does not accept the test issuer's token: see its log")
        time.sleep(1)


def projected_token(directory: Path, issuer: TestIssuer, **options: Any) -> ProjectedToken:
    options = {"audience": REALM_ISSUER, "service_account": CLIENT, **options}
    return ProjectedToken(directory, issuer, namespace=NAMESPACE, lifetime=600, **options)


@pytest.fixture
def projected(tmp_path: Path, issuer: TestIssuer) -> ProjectedToken:
    return projected_token(tmp_path / "kube", issuer)


def federated_client(**source: Any) -> dict[str, Any]:
    return {"CLIENT_ID": CLIENT, "AUTH_METHOD": "federated_jwt", "CLIENT_SECRET": None, **source}


def federated_settings(**source: Any) -> Any:
    """The default client reads Keycloak's events; "federated" is the client under test."""
    setting = client_settings(KEYCLOAK_URL)
    setting["CLIENTS"] = {**setting["CLIENTS"], "federated": federated_client(**source)}
    return override_settings(KEYCLOAK_JWT_AUTH=setting)


def test_a_federated_client_gets_service_account_tokens_with_no_secret_or_key(
    projected: ProjectedToken,
) -> None:
    own = federated_client(ASSERTION_FILE=projected.path)
    assert not [key for key, value in own.items() if value and ("SECRET" in key or "KEY" in key)]
    with federated_settings(ASSERTION_FILE=projected.path):
        token = get_access_token("federated")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["azp"] == CLIENT
    assert claims["preferred_username"] == f"service-account-{CLIENT}"


def test_rotating_the_assertion_file_costs_no_failed_call_and_keycloak_logs_each_login(
    projected: ProjectedToken, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = failures = 0
    since = time.time()
    with federated_settings(ASSERTION_FILE=projected.path):
        for _ in range(ROTATIONS):
            projected.rotate()
            for _ in range(CALLS_PER_ROTATION):
                calls += 1
                try:
                    get_access_token("federated", force_refresh=True)
                except Exception:
                    failures += 1
        events = token_events(CLIENT, since, time.time())
    federated = [e for e in events if e["details"].get("client_auth_method") == "federated-jwt"]
    with capsys.disabled():
        print(
            f"\nfederated: {calls} calls, {failures} failed, {ROTATIONS} rotations, "
            f"{len(federated)} CLIENT_LOGIN events with client_auth_method=federated-jwt"
        )
    assert (calls, failures) == (ROTATIONS * CALLS_PER_ROTATION, 0)
    assert len(federated) == len(events) == calls


def test_an_unknown_subject_is_refused_by_keycloak_with_a_401(
    tmp_path: Path, issuer: TestIssuer
) -> None:
    stranger = projected_token(tmp_path, issuer, service_account="stranger")
    with federated_settings(ASSERTION_FILE=stranger.path), pytest.raises(InvalidClientError) as e:
        get_access_token("federated")
    assert e.value.status == 401


def test_a_wrong_audience_is_keycloaks_400(projected: ProjectedToken, issuer: TestIssuer) -> None:
    with federated_settings(ASSERTION_FILE=projected.path):
        get_access_token("federated")
        token = issuer.service_account_token(NAMESPACE, CLIENT, f"{REALM_ISSUER}/")
        projected.rotate(token)
        with pytest.raises(OAuthError) as refused:
            get_access_token("federated", force_refresh=True)
    assert (refused.value.status, refused.value.error_description) == (
        400,
        "Invalid token audience",
    )


def test_an_expired_assertion_is_refused_before_the_network(
    projected: ProjectedToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    with federated_settings(ASSERTION_FILE=projected.path):
        get_access_token("federated")
        projected.rotate(issued_at=time.time() - 700)  # lifetime 600: expired 100 s ago
        since = time.time()
        with pytest.raises(AssertionUnusableError) as refused:
            get_access_token("federated", force_refresh=True)
        assert token_events(CLIENT, since, time.time()) == []
    assert refused.value.remaining is not None and refused.value.remaining < -99
    assert projected.path in str(refused.value)


def test_a_provider_is_a_source_too(issuer: TestIssuer) -> None:
    global PROVIDED
    PROVIDED = issuer.service_account_token(NAMESPACE, CLIENT, REALM_ISSUER)
    with federated_settings(ASSERTION_PROVIDER=f"{__name__}.provide"):
        assert get_access_token("federated", force_refresh=True)


PROVIDED = ""


def provide() -> str:
    return PROVIDED


def test_the_doctor_reports_the_assertion_and_keycloaks_federated_client(
    projected: ProjectedToken, issuer: TestIssuer
) -> None:
    with federated_settings(ASSERTION_FILE=projected.path):
        findings = {f.check: f for f in diagnose("federated")}
    subject = f"system:serviceaccount:{NAMESPACE}:{CLIENT}"
    assert findings["assertion"].status == OK, findings["assertion"]
    assert f"iss {issuer.url!r}, sub {subject!r}, aud [{REALM_ISSUER!r}]" in (
        findings["assertion"].message
    )
    assert findings["token"].status == OK
    assert findings["client"].status == OK, findings["client"]
    assert findings["client"].message == (
        f"Signed JWT - Federated: identity provider 'test-kubernetes', subject {subject!r}"
    )


# --- FakeKeycloak and Keycloak 26.7.3 answer the same federated assertions alike ------------

AGREEMENT_CASES: dict[str, dict[str, Any]] = {
    "good": {},
    "client_id of the client": {"_client_id": CLIENT},
    "client_id of another client": {"_client_id": "django-service"},
    "unknown sub": {"sub": "system:serviceaccount:demo:stranger"},
    "aud with a trailing slash": {"aud": "{issuer}/"},
    "aud = token endpoint": {"aud": "{issuer}/protocol/openid-connect/token"},
    "two auds": {"aud": ["{issuer}", "api"]},
    "aud a string": {"aud": "{issuer}"},
    "expired": {"_issued_at": -700, "_lifetime": 600},
    "no exp": {"exp": None},
    "no jti": {"jti": None},
    "iat 3700 s ago, exp ahead": {"_issued_at": -3700, "_lifetime": 7200},
    "bad signature": {"_forged": True},
}


def federated_answer(
    issuer: TestIssuer, realm_issuer: str, case: dict[str, Any], *, twice: bool = False
) -> tuple[int, str, str]:
    spec = dict(case)
    lifetime, issued_at = spec.pop("_lifetime", 600), time.time() + spec.pop("_issued_at", 0)
    forged, client_id = spec.pop("_forged", False), spec.pop("_client_id", None)
    aud = spec.pop("aud", [realm_issuer])
    aud = [a.format(issuer=realm_issuer) for a in aud] if isinstance(aud, list) else aud
    subject = spec.pop("sub", f"system:serviceaccount:{NAMESPACE}:{CLIENT}")
    aud = aud.format(issuer=realm_issuer) if isinstance(aud, str) else aud
    token = issuer.mint(subject, aud, lifetime=lifetime, issued_at=issued_at, **spec)
    if forged:
        token = token.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    form = {"grant_type": "client_credentials", "client_assertion": token}
    form["client_assertion_type"] = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    if client_id:
        form["client_id"] = client_id
    url = f"{realm_issuer}/protocol/openid-connect/token"
    for _ in range(2 if twice else 1):
        answer = requests.post(url, data=form, timeout=10)
    body = answer.json()
    return answer.status_code, body.get("error", ""), body.get("error_description", "")


def test_fake_and_real_keycloak_agree_on_federated_assertions(
    issuer: TestIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    with FakeKeycloak() as fake:
        fake.add_identity_provider("test-kubernetes", issuer.url)
        subject = f"system:serviceaccount:{NAMESPACE}:{CLIENT}"
        fake.add_federated_client(CLIENT, "test-kubernetes", subject)
        rows = [
            (
                name,
                *(federated_answer(issuer, target, case) for target in (REALM_ISSUER, fake.issuer)),
            )
            for name, case in AGREEMENT_CASES.items()
        ]
        reused = [federated_answer(issuer, t, {}, twice=True) for t in (REALM_ISSUER, fake.issuer)]
    rows.append(("the same JWT twice", *reused))
    with capsys.disabled():
        print("\n| case | Keycloak 26.7.3 | FakeKeycloak |\n|---|---|---|")
        for name, real, faked in rows:
            print(f"| {name} | {real} | {faked} |")
    assert [(name, real) for name, real, _ in rows] == [(name, faked) for name, _, faked in rows]
