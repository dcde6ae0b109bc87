"""``federated_jwt``: the client assertion is a JWT from another issuer (a projected Kubernetes
service-account token in a file the kubelet rotates, or a provider's), checked by FakeKeycloak
as Keycloak 26.7.3 checks it (measured: tests/integration/test_federated.py)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import override_settings

from keycloak_jwt_auth import (
    AssertionUnusableError,
    ConfigurationError,
    InvalidClientError,
    federation,
    get_access_token,
)
from keycloak_jwt_auth.client_auth import federated as federated_module
from keycloak_jwt_auth.client_auth.federated import AssertionFile
from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.doctor.diagnose import FAIL, OK, WARN, diagnose
from keycloak_jwt_auth.doctor.federated import federated_client_finding
from keycloak_jwt_auth.doctor.probe import Probe
from keycloak_jwt_auth.exceptions import OAuthError
from keycloak_jwt_auth.settings.rules import client_problems
from keycloak_jwt_auth.testing import ASSERTION_TYPE, FakeKeycloak
from keycloak_jwt_auth.testing.issuer import ProjectedToken, TestIssuer
from keycloak_jwt_auth.tokens.store import token_cache_key

from .conftest import run_command
from .reports import failure, rendered

SUBJECT = "system:serviceaccount:default:django-service"
PROVIDED: list[Any] = []  # what provide() returns next (a test sets it)


def provide() -> Any:
    value = PROVIDED[0]
    if isinstance(value, Exception):
        raise value
    return value


PROVIDER = f"{__name__}.provide"
NOT_CALLABLE = 42


@pytest.fixture(scope="module")
def issuer() -> Iterator[TestIssuer]:
    with TestIssuer() as test_issuer:
        yield test_issuer


@pytest.fixture
def kc(issuer: TestIssuer) -> Iterator[FakeKeycloak]:
    with FakeKeycloak() as fake:
        fake.add_identity_provider("kubernetes", issuer.url)
        fake.add_federated_client("federated-service", "kubernetes", SUBJECT)
        yield fake


@pytest.fixture
def projected(tmp_path: Path, issuer: TestIssuer, kc: FakeKeycloak) -> ProjectedToken:
    return ProjectedToken(tmp_path / "kube", issuer, audience=kc.issuer)


def federated(kc: FakeKeycloak, **overrides: Any) -> Any:
    return override_settings(KEYCLOAK_JWT_AUTH=kc.settings("federated-service", **overrides))


def test_a_federated_client_gets_tokens_with_no_secret_or_key_in_its_settings(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    own = kc.settings("federated-service", ASSERTION_FILE=projected.path)
    assert not {"CLIENT_SECRET", "PRIVATE_KEY", "PRIVATE_KEY_FILE"} & set(own)
    with override_settings(KEYCLOAK_JWT_AUTH=own):
        token = get_access_token()
    claims = kc.verify_token(token)
    assert claims["azp"] == "federated-service"
    assert kc.token_requests == 1


def test_every_rotation_of_the_file_is_sent_by_the_very_next_request(
    kc: FakeKeycloak, projected: ProjectedToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[str] = []
    real_read = AssertionFile.read

    def read(self: AssertionFile) -> str:
        sent.append(real_read(self))
        return sent[-1]

    monkeypatch.setattr(AssertionFile, "read", read)
    written = []
    with federated(kc, ASSERTION_FILE=projected.path):
        for _ in range(5):
            written.append(projected.rotate())
            get_access_token(force_refresh=True)
    assert sent == written  # the ..data swap was seen each time, by the first read after it
    assert kc.token_requests == 5


def test_an_unchanged_file_is_read_once(
    projected: ProjectedToken, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = federation.read_assertion_file

    def read_assertion_file(path: str) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(federated_module, "read_assertion_file", read_assertion_file)
    source = AssertionFile(projected.path)
    first = source.read()
    assert source.read() is first and len(reads) == 1  # one stat() each time, one open()
    projected.rotate()
    assert source.read() != first and len(reads) == 2


def test_an_expired_assertion_is_refused_before_the_network(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        get_access_token()
        projected.rotate(issued_at=time.time() - 4000)  # lifetime 3600: expired 400 s ago
        with pytest.raises(AssertionUnusableError) as refused:
            get_access_token(force_refresh=True)
    assert kc.token_requests == 1
    assert f"ASSERTION_FILE ({projected.path!r}) holds a JWT that expired 40" in str(refused.value)
    assert refused.value.remaining is not None and refused.value.remaining < -399


def test_a_config_is_not_built_over_an_expired_file(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    projected.rotate(issued_at=time.time() - 4000)
    with federated(kc, ASSERTION_FILE=projected.path), pytest.raises(ConfigurationError) as e:
        get_access_token()
    assert "ASSERTION_FILE" in str(e.value) and "expired" in str(e.value)
    assert kc.token_requests == 0


def test_an_assertion_expiring_within_the_requests_reach_is_refused_with_its_remaining_life(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        get_access_token()  # the config is built with a good token
        projected.rotate(issued_at=time.time() - 3590)  # 10 s left; one request may take 15
        with pytest.raises(AssertionUnusableError) as refused:
            get_access_token(force_refresh=True)
    assert kc.token_requests == 1
    assert refused.value.source == f"ASSERTION_FILE ({projected.path!r})"
    assert refused.value.remaining is not None and 0 < refused.value.remaining <= 10
    assert "expires in" in str(refused.value) and "15 s a token request" in str(refused.value)


def test_a_file_that_is_no_jwt_is_refused_before_the_network(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        get_access_token()
        projected.rotate("not-a-jwt")
        with pytest.raises(AssertionUnusableError, match="is not a JWT"):
            get_access_token(force_refresh=True)
    assert kc.token_requests == 1


def test_an_unknown_subject_is_a_401_invalid_client(
    kc: FakeKeycloak, tmp_path: Path, issuer: TestIssuer
) -> None:
    stranger = ProjectedToken(tmp_path, issuer, audience=kc.issuer, service_account="other")
    with federated(kc, ASSERTION_FILE=stranger.path), pytest.raises(InvalidClientError) as e:
        get_access_token()
    assert e.value.status == 401
    assert e.value.error_description == "Invalid client or Invalid client credentials"


def test_a_provider_is_called_for_every_token_request(kc: FakeKeycloak, issuer: TestIssuer) -> None:
    with federated(kc, ASSERTION_PROVIDER=PROVIDER):
        for _ in range(3):
            PROVIDED[:] = [issuer.service_account_token("default", "django-service", kc.issuer)]
            get_access_token(force_refresh=True)
    assert kc.token_requests == 3


@pytest.mark.parametrize(
    ("returned", "said"),
    [
        (RuntimeError("password=hunter2"), "raised RuntimeError"),
        (b"bytes", "returned a bytes, not a str"),
        (None, "returned a NoneType, not a str"),
    ],
)
def test_a_failing_provider_is_a_clear_error_that_chains_none_of_its_frames(
    kc: FakeKeycloak, returned: Any, said: str
) -> None:
    PROVIDED[:] = [returned]
    with federated(kc, ASSERTION_PROVIDER=PROVIDER), pytest.raises(AssertionUnusableError) as e:
        get_access_token()
    refused = e
    assert f"ASSERTION_PROVIDER ('{__name__}.provide') {said}" in str(refused.value)
    assert "hunter2" not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__context__ is None
    assert kc.token_requests == 0


def test_the_assertion_never_reaches_a_log_or_a_repr(
    kc: FakeKeycloak, projected: ProjectedToken, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with federated(kc, ASSERTION_FILE=projected.path):
        get_access_token()
        handler = clients["default"]
        shown = repr(handler.authentication) + repr(handler.config)
    token = Path(projected.path).read_text()
    read = AssertionFile(projected.path).read()
    assert repr(read) == "'********'"
    assert token not in caplog.text and token not in shown
    assert token.split(".")[1] not in caplog.text


def test_the_cache_key_tells_federated_identities_apart_without_the_rotating_jwt(
    kc: FakeKeycloak, projected: ProjectedToken, tmp_path: Path, issuer: TestIssuer
) -> None:
    def key(**source: Any) -> str:
        with federated(kc, **source):
            return token_cache_key(clients["default"].config)

    first = key(ASSERTION_FILE=projected.path)
    projected.rotate()
    assert key(ASSERTION_FILE=projected.path) == first
    other = ProjectedToken(tmp_path / "other", issuer, audience=kc.issuer)
    assert len({first, key(ASSERTION_FILE=other.path), key(ASSERTION_PROVIDER=PROVIDER)}) == 3


# --- the checks -------------------------------------------------------------------------


def ids(**settings: Any) -> list[str]:
    with override_settings(KEYCLOAK_JWT_AUTH=settings):
        return [problem.id for problem in client_problems("default")]


BASE = {"SERVER_URL": "https://kc.test", "REALM": "demo", "CLIENT_ID": "svc"}
FED = {**BASE, "AUTH_METHOD": "federated_jwt"}


def test_a_federated_client_needs_exactly_one_source_of_its_jwt() -> None:
    assert ids(**FED) == ["E040"]
    assert ids(**FED, ASSERTION_FILE="/a", ASSERTION_PROVIDER=PROVIDER) == ["E040"]


def test_assertion_file_checks(tmp_path: Path, issuer: TestIssuer) -> None:
    path = tmp_path / "token"
    assert ids(**FED, ASSERTION_FILE=str(path)) == ["E041"]
    path.write_text("hello")
    assert ids(**FED, ASSERTION_FILE=path) == ["E042"]
    path.write_text(issuer.mint("s", "https://kc.test/realms/demo/"))
    assert ids(**FED, ASSERTION_FILE=path) == ["E043"]
    path.write_text(issuer.mint("s", ["https://kc.test/realms/demo", "api"]))
    assert ids(**FED, ASSERTION_FILE=path) == ["E043"]
    path.write_text(issuer.mint("s", ["https://kc.test/realms/demo"], issued_at=1, lifetime=60))
    assert ids(**FED, ASSERTION_FILE=path) == ["E044"]
    path.write_text(issuer.mint("s", "https://kc.test/realms/demo"))
    assert ids(**FED, ASSERTION_FILE=path) == []


def test_assertion_provider_checks() -> None:
    assert ids(**FED, ASSERTION_PROVIDER="no.such.module") == ["E045"]
    assert ids(**FED, ASSERTION_PROVIDER=f"{__name__}.NOT_CALLABLE") == ["E045"]
    PROVIDED[:] = [AssertionError("a check must not spend an assertion")]
    assert ids(**FED, ASSERTION_PROVIDER=PROVIDER) == []


def test_a_secret_or_key_beside_federated_jwt_is_reported_and_so_is_an_unused_source() -> None:
    provider = PROVIDER
    assert ids(**FED, ASSERTION_PROVIDER=provider, CLIENT_SECRET="x" * 32) == ["W040"]
    assert ids(**BASE, CLIENT_SECRET="x" * 32, ASSERTION_PROVIDER=provider) == ["W041"]


def test_an_inherited_secret_gets_the_hint_to_unset_it_in_the_federated_client() -> None:
    federated_client = {"AUTH_METHOD": "federated_jwt", "ASSERTION_PROVIDER": PROVIDER}
    setting = {**BASE, "CLIENT_SECRET": "x" * 32, "CLIENTS": {"k8s": federated_client}}
    with override_settings(KEYCLOAK_JWT_AUTH=setting):
        (problem,) = client_problems("k8s")
    assert problem.id == "W040" and "'CLIENT_SECRET': None in CLIENTS['k8s']" in problem.hint


def test_a_refusal_from_keycloak_is_still_an_oauth_error(
    kc: FakeKeycloak, tmp_path: Path, issuer: TestIssuer
) -> None:
    wrong = ProjectedToken(tmp_path, issuer, audience=f"{kc.issuer}/protocol/openid-connect/token")
    settings = federated(kc, ASSERTION_FILE=wrong.path, AUDIENCE=wrong.audience)
    with settings, pytest.raises(OAuthError, match="Invalid token audience"):
        get_access_token()


# --- FakeKeycloak's federated rules (Keycloak 26.7.3's, measured) ------------------------


def post(kc: FakeKeycloak, assertion: str, **form: str) -> Any:
    return requests.post(
        kc.token_endpoint,
        data={
            "grant_type": "client_credentials",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
            **form,
        },
        timeout=5,
    )


def test_the_fake_lets_a_kubernetes_token_be_reused_for_an_hour_after_its_iat(
    kc: FakeKeycloak, issuer: TestIssuer
) -> None:
    token = issuer.service_account_token("default", "django-service", kc.issuer)
    assert [post(kc, token).status_code for _ in range(2)] == [200, 200]
    old = issuer.service_account_token(
        "default", "django-service", kc.issuer, issued_at=time.time() - 3601, lifetime=7200
    )
    refused = post(kc, old).json()["error_description"]
    assert refused == "Token was issued too far in the past to be used now"


def test_the_fake_lets_an_oidc_token_be_used_once_within_300_seconds(
    kc: FakeKeycloak, issuer: TestIssuer
) -> None:
    kc.identity_providers.clear()
    kc.add_identity_provider("oidc", issuer.url, kind="oidc")
    kc.add_federated_client("oidc-client", "oidc", "workload")
    token = issuer.mint("workload", kc.issuer)
    assert post(kc, token).status_code == 200
    assert post(kc, token).json()["error_description"] == "Token reuse detected"
    old = issuer.mint("workload", kc.issuer, issued_at=time.time() - 301)
    refused = post(kc, old).json()["error_description"]
    assert refused == "Token was issued too far in the past to be used now"
    kc.identity_providers["oidc"].reuse = True
    again = issuer.mint("workload", kc.issuer)
    assert [post(kc, again).status_code for _ in range(2)] == [200, 200]


@pytest.mark.parametrize(
    ("audience", "status", "said"),
    [
        ("{issuer}/", 400, "Invalid token audience"),
        ("{issuer}/protocol/openid-connect/token", 400, "Invalid token audience"),
        (["{issuer}", "other"], 400, "Multiple audiences not allowed"),
    ],
)
def test_the_fake_wants_exactly_the_realm_issuer_as_the_audience(
    kc: FakeKeycloak, issuer: TestIssuer, audience: Any, status: int, said: str
) -> None:
    audience = (
        [a.format(issuer=kc.issuer) for a in audience]
        if isinstance(audience, list)
        else audience.format(issuer=kc.issuer)
    )
    answer = post(kc, issuer.mint(SUBJECT, audience))
    assert (answer.status_code, answer.json()["error_description"]) == (status, said)


def test_the_fake_refuses_another_client_id_a_bad_signature_and_an_expired_token(
    kc: FakeKeycloak, issuer: TestIssuer
) -> None:
    token = issuer.mint(SUBJECT, kc.issuer)
    assert post(kc, token, client_id="federated-service").status_code == 200
    assert post(kc, token, client_id="django-service").status_code == 401
    forged = token.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert post(kc, forged).status_code == 401
    expired = issuer.mint(SUBJECT, kc.issuer, issued_at=time.time() - 120, lifetime=60)
    assert post(kc, expired).json()["error_description"] == "Token is not active"


def test_the_fake_shows_a_federated_client_as_keycloak_does(kc: FakeKeycloak) -> None:
    shown = kc.client("federated-service").representation()
    assert shown["clientAuthenticatorType"] == "federated-jwt"
    assert shown["attributes"]["jwt.credential.issuer"] == "kubernetes"
    assert shown["attributes"]["jwt.credential.sub"] == SUBJECT


# --- the doctor -----------------------------------------------------------------------------


def test_the_doctor_describes_the_assertion_and_the_keycloak_client_never_the_jwt(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    kc.client("federated-service").roles = ("view-clients",)
    with federated(kc, ASSERTION_FILE=projected.path):
        findings = {f.check: f for f in diagnose("default")}
    assertion, client = findings["assertion"], findings["client"]
    assert assertion.status == OK and findings["token"].status == OK
    assert f"iss {kc_issuer_of(projected)!r}, sub {SUBJECT!r}" in assertion.message
    assert f"aud [{kc.issuer!r}], expires in 3" in assertion.message
    assert client.status == OK
    assert client.message == (
        f"Signed JWT - Federated: identity provider 'kubernetes', subject {SUBJECT!r}"
    )
    everything = " ".join(f"{f.message} {f.hint}" for f in findings.values())
    assert Path(projected.path).read_text() not in everything


def kc_issuer_of(projected: ProjectedToken) -> str:
    return projected.issuer.url


def test_the_doctor_fails_a_stale_assertion_before_asking_keycloak(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        clients["default"]  # built while the file is fresh
        projected.rotate(issued_at=time.time() - 3595)  # 5 s left
        findings = {f.check: f for f in diagnose("default")}
    assert findings["assertion"].status == FAIL and "expires in" in findings["assertion"].message
    assert "token" not in findings and kc.token_requests == 0


def test_the_doctor_names_a_subject_keycloak_does_not_expect(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    kc.client("federated-service").roles = ("view-clients",)
    with federated(kc, ASSERTION_FILE=projected.path):
        get_access_token()
        kc.client("federated-service").federated_subject = "system:serviceaccount:x:y"
        findings = {f.check: f for f in diagnose("default")}
    assert findings["token"].status == FAIL
    assert "Invalid client" in findings["token"].message
    assert "the JWT's sub as the subject" in findings["token"].hint


# --- error reports: Django's debug page and error e-mails, DEBUG on and off -----------------

JWT_SHAPE = re.compile(r"eyJ[\w-]+\.[\w-]+")


def provide_with_a_secret() -> str:
    credential = f"provider-credential-{PROVIDED[1]}"  # a local the error page would show
    raise RuntimeError(f"the identity service refused {credential}")


@pytest.mark.parametrize("case", ["expired file", "expired provider", "provider raises"])
def test_no_error_report_shows_the_jwt_or_what_the_provider_held(
    kc: FakeKeycloak, projected: ProjectedToken, issuer: TestIssuer, case: str
) -> None:
    planted = secrets.token_hex(8)
    expired = issuer.service_account_token(
        "default", "django-service", kc.issuer, issued_at=time.time() - 4000
    )
    PROVIDED[:] = [expired, planted]
    source = {
        "expired file": {"ASSERTION_FILE": projected.path},
        "expired provider": {"ASSERTION_PROVIDER": PROVIDER},
        "provider raises": {"ASSERTION_PROVIDER": f"{__name__}.provide_with_a_secret"},
    }[case]
    with federated(kc, **source):
        if case == "expired file":
            get_access_token()  # built and served while the file was fresh
        projected.rotate(expired)
        exc_info = failure(lambda: get_access_token(force_refresh=True))
    assert exc_info is not None and isinstance(exc_info[1], AssertionUnusableError)
    for report in rendered(exc_info):
        assert not JWT_SHAPE.search(report)
        assert planted not in report


def test_the_commands_work_for_a_federated_client_and_show_no_jwt(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        out, err, code = run_command("fetch_token", "--json")
        keys_out, _, keys_code = run_command("keycloak_keys", "jwks")
        doctor_out, _, _ = run_command("keycloak_doctor")
    assert code == 0 and json.loads(out)["token_type"] == "Bearer"
    assert keys_code == 0 and json.loads(keys_out) == {"keys": []}
    token = Path(projected.path).read_text()
    assert token not in out + err + keys_out + doctor_out
    assert "OK   assertion" in doctor_out


@pytest.mark.parametrize(
    ("provided", "said"),
    [
        ("not-a-jwt", "is not a JWT"),
        (ValueError("no token today"), "raised ValueError"),
        ("no exp", "no exp"),
        ("wrong aud", "aud ['https://elsewhere.example']"),
    ],
)
def test_the_doctor_fails_each_unusable_assertion_of_a_provider(
    kc: FakeKeycloak, issuer: TestIssuer, provided: Any, said: str
) -> None:
    minted = {
        "no exp": issuer.mint(SUBJECT, kc.issuer, exp=None),
        "wrong aud": issuer.mint(SUBJECT, "https://elsewhere.example"),
    }
    PROVIDED[:] = [minted.get(provided, provided) if isinstance(provided, str) else provided]
    with federated(kc, ASSERTION_PROVIDER=PROVIDER):
        findings = {f.check: f for f in diagnose("default")}
    assertion = findings["assertion"]
    assert assertion.status == FAIL and said in assertion.message and assertion.hint
    if provided == "wrong aud":
        assert repr(kc.issuer) in assertion.hint  # the audience to set on the volume


def test_the_doctor_warns_of_a_federated_client_without_its_issuer_or_subject(
    kc: FakeKeycloak, projected: ProjectedToken
) -> None:
    with federated(kc, ASSERTION_FILE=projected.path):
        probe = Probe(config=clients["default"].config, clock=time.time)
    finding = federated_client_finding(probe, {"jwt.credential.issuer": "kubernetes"}, "Signed")
    assert finding.status == WARN and finding.message.endswith(": incomplete")
    assert "set the identity provider" in str(finding.hint)


def test_reading_an_assertion_file_refuses_what_is_no_token(tmp_path: Path) -> None:
    (tmp_path / "big").write_bytes(b"a" * (federation.ASSERTION_FILE_LIMIT + 1))
    (tmp_path / "binary").write_bytes(b"\xff\xfe.\x00")
    (tmp_path / "padded").write_text("  a.b.c\n")
    for name, reason in [("missing", "cannot be read"), ("big", "larger"), ("binary", "text")]:
        with pytest.raises(federation.UnreadableAssertion, match=reason):
            federation.read_assertion_file(tmp_path / name)
    assert federation.read_assertion_file(tmp_path / "padded") == "a.b.c"


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("a.b", "3 dot-separated parts, not 2"),
        (42, "not 0"),
        ("!!.??.x", "base64url JSON"),
        ("W10.e30.x", "JSON object"),  # the header is [] and the claims {}
    ],
)
def test_unverified_claims_say_why_a_token_is_no_jwt(token: Any, reason: str) -> None:
    with pytest.raises(federation.NotAJwt, match=re.escape(reason)):
        federation.unverified_claims(token)


def test_the_remaining_life_and_audiences_of_odd_claims() -> None:
    assert federation.remaining_life({"exp": True}) is None
    assert federation.remaining_life({"exp": "100"}) is None
    assert federation.remaining_life({"exp": 100}, now=40.0) == 60.0
    assert federation.audiences({}) == []
    assert federation.audiences({"aud": ["a", 1]}) == ["a", "1"]
    assert federation.audiences({"aud": "a"}) == ["a"]
