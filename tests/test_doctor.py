"""The doctor's checks, one by one, against FakeKeycloak (the real Keycloak: integration)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.clients import clients, get_client_config
from keycloak_jwt_auth.doctor.diagnose import FAIL, OK, WARN, diagnose
from keycloak_jwt_auth.doctor.probe import Probe, _measure_skew, token_hint
from keycloak_jwt_auth.exceptions import OAuthError
from keycloak_jwt_auth.keys import load_private_key
from keycloak_jwt_auth.testing import FakeKeycloak

from .conftest import run_command
from .keyring import pem
from .loopback import Answer, Loopback


def found(client: str = "default", **kwargs: Any) -> dict[str, tuple[str, str, str]]:
    return {f.check: (f.status, f.message, f.hint) for f in diagnose(client, **kwargs)}


def test_a_healthy_client_with_a_per_process_cache(fake_keycloak: FakeKeycloak) -> None:
    findings = found()
    assert {check: status for check, (status, _, _) in findings.items()} == {
        **dict.fromkeys(
            ["server", "realm", "token", "clock", "refresh margin", "lock timeout", "roles",
             "client"],
            OK,
        ),
        "cache": WARN,
    }  # fmt: skip
    assert "LocMemCache" in findings["cache"][1]


def test_the_command_prints_one_line_per_finding_and_hints(fake_keycloak: FakeKeycloak) -> None:
    out, err, code = run_command("keycloak_doctor")
    assert code == 0
    assert "Client default" in out and "OK   token" in out and "WARN cache" in out
    assert "hint: For a site with several processes" in out
    assert fake_keycloak.client().secret not in out + err  # type: ignore[operator]


def test_a_short_token_lifetime_and_an_unpinned_algorithm(fake_keycloak: FakeKeycloak) -> None:
    fake_keycloak.token_lifespan = 12
    fake_keycloak.client().algorithm = None
    findings = found()
    assert (
        findings["refresh margin"][0] == WARN
        and "Access Token Lifespan" in findings["refresh margin"][2]
    )
    assert findings["lock timeout"][0] == WARN
    assert findings["client"][:2] == (WARN, "the client accepts any HMAC signature algorithm")


# HS512 with a short secret on purpose: newer PyJWT warns (InsecureKeyLengthWarning, which
# PyJWT 2.8 does not define, so the filter names its message).
@pytest.mark.filterwarnings("ignore:.*minimum recommended length:UserWarning")
def test_refusals_name_the_fix(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(CLIENT_SECRET="w" * 40)
    status, message, hint = found()["token"]
    assert status == FAIL and "Signature on JWT token by client secret" in message
    assert "Clients > django-service > Credentials" in hint
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(CLIENT_ID="ghost")
    assert "check CLIENT_ID and REALM" in found()["token"][2]
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(ALGORITHM="HS512")
    assert "Signature algorithm" in found()["token"][2]
    fake_keycloak.clock = lambda: time.time() - 100
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings()
    assert "NTP" in found()["token"][2]


def test_server_realm_and_settings_failures(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(REALM="other")
    assert found()["realm"][:2] == (
        FAIL,
        "Keycloak answered 404 for realm 'other' (Realm does not exist)",
    )
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings()
    with fake_keycloak.failing("html"):
        assert found()["realm"][0] == FAIL
    with fake_keycloak.failing("down"):
        assert list(found()) == ["server", "cache"]
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(CLIENT_SECRET="")
    assert found() == {
        "settings": (
            FAIL,
            "Keycloak client 'default' cannot be used: CLIENT_SECRET is missing or empty. Run "
            "'manage.py check' for hints.",
            "Run 'manage.py check' for each problem.",
        )
    }
    _, err, code = run_command("keycloak_doctor", "--json")
    assert code == 1 and "1 check(s) failed" in err


def test_an_issuer_or_token_endpoint_other_than_keycloaks(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    localhost = fake_keycloak.url.replace("127.0.0.1", "localhost")
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(SERVER_URL=localhost)
    assert "announces the issuer" in found()["realm"][1]
    proxy = f"{fake_keycloak.issuer}/protocol/openid-connect/token?via=proxy"
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(TOKEN_ENDPOINT=proxy)
    assert found()["realm"][:2] == (
        WARN,
        f"Keycloak announces the token_endpoint {fake_keycloak.token_endpoint!r}, not {proxy!r}",
    )


@pytest.mark.parametrize(
    ("backend", "status", "words"),
    [
        ("tests.caches.BrokenCache", FAIL, "Connection refused"),
        ("django.core.cache.backends.dummy.DummyCache", WARN, "does not keep"),
    ],
)
def test_a_cache_that_fails_or_forgets(
    fake_keycloak: FakeKeycloak, settings: Any, backend: str, status: str, words: str
) -> None:
    settings.CACHES = {"default": {"BACKEND": backend}}
    cache_status, message, _ = found()["cache"]
    assert cache_status == status and words in message


def test_skew_from_the_date_header_when_the_token_has_no_iat(fake_keycloak: FakeKeycloak) -> None:
    probe = Probe(get_client_config(), clock=time.time)
    now = time.time()
    _measure_skew(probe, now, [(now, formatdate(now - 30, usegmt=True))])
    assert probe.skew_source == "the Date header"
    assert probe.skew is not None and 29 < probe.skew < 32
    assert json.dumps(found()["clock"])  # the fake's iat: the usual source


def test_tls_and_an_unreachable_token_endpoint(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    https = fake_keycloak.url.replace("http://", "https://")
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(SERVER_URL=https)
    status, message, hint = found()["server"]
    # https:// to the fake's plain-HTTP port: the scheme or the port is wrong, not VERIFY
    assert status == FAIL and "TLS" in message and "The port seems to speak plain HTTP" in message
    assert hint == "Check SERVER_URL's scheme and port."
    closed = "http://127.0.0.1:9/realms/demo/protocol/openid-connect/token"
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(TOKEN_ENDPOINT=closed, RETRIES=0)
    findings = found()
    assert findings["realm"][0] == WARN
    assert (
        findings["token"][0] == FAIL and "Cannot reach the token endpoint" in findings["token"][1]
    )


def test_an_unknown_refusal_points_at_keycloaks_log(fake_keycloak: FakeKeycloak) -> None:
    probe = Probe(get_client_config(), clock=time.time)
    refusal = OAuthError("invalid_request", "Something new", status=400)
    assert token_hint(probe, refusal) == "See Keycloak's log for the client django-service."


# --- private_key_jwt and rotations -------------------------------------------------------------


@pytest.fixture
def key_client(fake_keycloak: FakeKeycloak, settings: Any) -> Iterator[Loopback]:
    """A private_key_jwt client whose JWKS URL (as Keycloak keeps it) is a loopback server that
    serves this app's JWKS (route "/jwks"); the settings point at it."""
    with Loopback() as jwks_host:
        fake_keycloak.add_client(
            "keys", private_key=pem("ES256"), algorithm="ES256", jwks_url=f"{jwks_host.url}/jwks"
        )
        settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("keys")
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]  # the app serves it
        serve_jwks(jwks_host)
        yield jwks_host


def public_pem(private_pem: str) -> str:
    key = load_private_key(private_pem)
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def serve_jwks(host: Loopback, **extra: Any) -> None:
    with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, **extra}):
        host.route("/jwks", Answer(200, json.dumps({"keys": clients.published_keys()}).encode()))


def test_a_healthy_key_client(key_client: Loopback) -> None:
    findings = found()
    assert findings["token"][0] == findings["client"][0] == findings["jwks"][0] == OK
    assert findings["client"][1] == "Signed JWT, signature algorithm ES256"
    assert findings["jwks"][1].startswith(f"{key_client.url}/jwks serves the current key (kid ")


def test_a_jwks_url_serving_another_key(fake_keycloak: FakeKeycloak, key_client: Loopback) -> None:
    serve_jwks(key_client, PRIVATE_KEY=pem("ES256", 1))
    status, message, hint = found()["token"]
    assert status == FAIL and "Unable to load public key" in message
    assert "Keys: 'Use JWKS URL' on" in hint and "keycloak_keys jwks" in hint
    assert "CLIENT_SECRET" not in hint
    # Keycloak still holds the key it read before: tokens come, the JWKS URL is wrong.
    fake_keycloak.client("keys").public_keys = [public_pem(pem("ES256"))]
    findings = found()
    assert findings["token"][0] == OK
    assert findings["jwks"][0] == FAIL and "does not hold the current key" in findings["jwks"][1]


def test_a_jwks_url_that_does_not_answer_json(
    fake_keycloak: FakeKeycloak, key_client: Loopback
) -> None:
    key_client.route("/jwks", Answer(200, b"<html>sign in</html>", {"Content-Type": "text/html"}))
    assert found()["token"][:1] == (FAIL,)  # Keycloak cannot read it either
    fake_keycloak.client("keys").public_keys = [public_pem(pem("ES256"))]  # read before
    status, message, _ = found()["jwks"]
    assert status == FAIL and "answered HTTP 200 without a JSON key set" in message


def test_a_key_client_that_keycloak_keeps_as_a_secret_client(
    fake_keycloak: FakeKeycloak, key_client: Loopback
) -> None:
    client = fake_keycloak.client("keys")
    client.jwks_url, client.public_keys = None, [public_pem(pem("ES256"))]  # keys, no JWKS URL
    findings = found()
    assert findings["client"][0] == FAIL
    assert findings["client"][1] == "the client does not read its public keys from a JWKS URL"
    assert findings["jwks"][0] == WARN  # its URL is unknown, so it cannot be compared


def test_a_half_done_secret_rotation_is_a_warning(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    old = fake_keycloak.client().secret
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(
        CLIENT_SECRET="a-new-secret-keycloak-does-not-know-yet-0123", FALLBACK_SECRETS=[old]
    )
    status, message, hint = found()["token"]
    assert status == WARN
    assert "only with FALLBACK_SECRETS[0]: Keycloak refused CLIENT_SECRET" in message
    assert "Rotating the client secret" in hint


def test_the_roles_finding_names_the_calls_a_token_cannot_make(
    fake_keycloak: FakeKeycloak,
) -> None:
    status, message, _ = found()["roles"]
    assert status == OK  # the reads are there; the writes are only said
    assert "without manage-organizations: create_organization" in message
    assert "without query-organizations: organizations" in message
    fake_keycloak.client().roles += ("manage-users", "query-organizations", "view-organizations",
                                     "manage-organizations")  # fmt: skip
    assert "403" not in found()["roles"][1]


def test_a_wrong_path_prefix_is_told_apart_from_a_wrong_realm(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(SERVER_URL=f"{fake_keycloak.url}/auth")
    status, message, hint = found()["server"]
    assert status == FAIL and message.startswith(f"nothing answers at {fake_keycloak.url}/auth/")
    assert hint.startswith("Check the path of SERVER_URL: Keycloak 17 and later serve /realms/")
    assert "realm" not in found()  # the realm is not blamed
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(REALM="nope")
    status, message, hint = found()["realm"]
    assert (status, message) == (
        FAIL,
        "Keycloak answered 404 for realm 'nope' (Realm does not exist)",
    )


def test_an_unknown_client_lists_the_configured_ones(fake_keycloak: FakeKeycloak) -> None:
    out, err, code = run_command("keycloak_doctor", "--client", "nope")
    assert code == 1
    assert "Use --client with one of: default." in out
    assert "manage.py check" not in out
