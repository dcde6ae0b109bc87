"""Issue 18: each finding of the review of main 8978dd2, reproduced. Each test fails without
its fix (checked once by reverting the fix)."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import secrets
import ssl
import time
import warnings
from typing import Any

import httpx
import jwt
import pytest
import requests
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.cache import caches
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import Client, override_settings

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    ConfigurationError,
    HttpxServiceAccountAuth,
    KeycloakAdmin,
    KeycloakUnavailableError,
    ServiceAccountAuth,
    get_access_token,
    get_token_manager,
)
from keycloak_jwt_auth.auths import httpx_auth
from keycloak_jwt_auth.exceptions import InvalidTokenResponseError
from keycloak_jwt_auth.http.transport import REFUSED_BODY_LIMIT
from keycloak_jwt_auth.keys import load_private_key
from keycloak_jwt_auth.testing import FakeKeycloak
from keycloak_jwt_auth.tokens.manager import Flight

from .conftest import run_command, token_body, token_calls
from .keyring import key_settings, pem
from .loopback import Answer, Loopback
from .reports import failure, leaked

PASSWORD = f"planted-password-{secrets.token_hex(8)}"
SECRET = f"planted-client-secret-{secrets.token_hex(16)}"
FALLBACK = f"planted-fallback-secret-{secrets.token_hex(16)}"
BASE = settings.KEYCLOAK_JWT_AUTH


def with_settings(**changes: Any) -> Any:
    return override_settings(KEYCLOAK_JWT_AUTH={**BASE, **changes})


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# --- 1. passwords refused before the request is built ------------------------------------------

REFUSED_WRITES = {
    "empty id": lambda admin: admin.set_password("", PASSWORD),
    "climbing id": lambda admin: admin.set_password("..", PASSWORD),
    "backslash id": lambda admin: admin.update_user("a\\b", {"credentials": [{"value": PASSWORD}]}),
    "blank username": lambda admin: admin.create_user(
        {"username": " ", "credentials": [{"type": "password", "value": PASSWORD}]}
    ),
    "credential not a dict": lambda admin: admin.create_user(
        {"username": "ada", "credentials": [PASSWORD]}
    ),
    "bytes value": lambda admin: admin.create_user(
        {"username": "ada", "credentials": [{"type": "password", "value": PASSWORD.encode()}]}
    ),
    "secretData": lambda admin: admin.create_user(
        {"username": " ", "credentials": [{"type": "password", "secretData": PASSWORD}]}
    ),
    "bytes password": lambda admin: admin.set_password("u-1", PASSWORD.encode()),
}


@pytest.mark.parametrize("write", REFUSED_WRITES.values(), ids=REFUSED_WRITES)
@pytest.mark.parametrize("kind", ["sync", "async"])
def test_1_a_refused_password_is_on_no_error_page(write: Any, kind: str) -> None:
    if kind == "sync":
        exc_info = failure(lambda: write(KeycloakAdmin()))
    else:
        exc_info = failure(lambda: run(write(AsyncKeycloakAdmin())))
    assert exc_info is not None and exc_info[0] in (TypeError, ValueError)
    assert leaked(exc_info, [PASSWORD]) == []


# --- 2. settings validation of any value of any type ends in a problem with an ID --------------

ODD_SETTINGS = {
    "bracketed host": {"SERVER_URL": "https://[host"},
    "algorithm list": {"ALGORITHM": ["HS256"]},
    "cache alias list": {"CACHE_ALIAS": ["default"]},
    "lone surrogate": {"CLIENT_SECRET": SECRET + "\udc80"},
    "huge int": {"LOCK_TIMEOUT": 10**400},
    "bytes secret": {"CLIENT_SECRET": SECRET.encode()},
}


@pytest.mark.parametrize("change", ODD_SETTINGS.values(), ids=ODD_SETTINGS)
def test_2_odd_settings_are_reported_not_crashed_on(change: dict[str, Any]) -> None:
    keys = {"CLIENT_SECRET": SECRET, "FALLBACK_SECRETS": [FALLBACK], **change}
    with with_settings(**keys):
        with pytest.raises(SystemCheckError, match=r"keycloak_jwt_auth\.E0\d\d"):
            call_command("check")
        exc_info = failure(get_access_token)
    assert exc_info is not None and exc_info[0] is ConfigurationError
    assert leaked(exc_info, [SECRET, FALLBACK]) == []


# --- 3. the demo's create form needs staff, whatever the anonymous switch says ----------------


@pytest.mark.django_db
def test_3_anonymous_users_cannot_create_users(fake_keycloak: FakeKeycloak) -> None:
    with override_settings(KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True, DEBUG=True):
        response = Client().post("/users/create/", {"username": "mallory"})
        deploy = [m.id for m in _deploy_checks()]
    assert response.status_code == 302 and "login" in response["Location"]
    assert "mallory" not in [user["username"] for user in fake_keycloak.users]
    assert "keycloak_jwt_auth.W103" in deploy


def _deploy_checks() -> list[Any]:
    from django.core.checks import run_checks

    return run_checks(include_deployment_checks=True)


# --- 4. one client's keys per JWKS URL; kids unique -------------------------------------------

READER = {**key_settings("ES256"), "CLIENT_ID": "reader"}
WRITER = {**key_settings("ES256", number=1), "CLIENT_ID": "writer", "NEXT_PRIVATE_KEY": None}


def test_4_a_jwks_url_serves_one_keycloak_clients_keys() -> None:
    with with_settings(**READER, CLIENTS={"writer": WRITER}):
        reader = Client().get("/.well-known/jwks/reader.json").json()["keys"]
        writer = Client().get("/.well-known/jwks/writer.json").json()["keys"]
        default = Client().get("/.well-known/jwks.json").json()["keys"]
        unknown = Client().get("/.well-known/jwks/nobody.json")
    assert len(reader) == len(writer) == 1 and reader != writer
    assert default == reader  # the old URL: the default client's keys only
    assert unknown.status_code == 404


def test_4_an_inherited_key_id_is_an_error_and_the_view_refuses_it() -> None:
    twin = {"PRIVATE_KEY": pem("ES256", 1), "ALGORITHM": "ES256"}  # same CLIENT_ID and KEY_ID
    with with_settings(**READER, KEY_ID="k1", CLIENTS={"twin": twin}):
        with pytest.raises(SystemCheckError, match=r"keycloak_jwt_auth\.E023"):
            call_command("check")
        assert Client().get("/.well-known/jwks/reader.json").status_code == 500


# --- 5. the 401 before a retry is read capped ------------------------------------------------

BOMB = gzip.compress(b"\0" * (8 * 1024 * 1024))  # 8 MiB inflated, a few KiB sent
API = "/api/thing"


@pytest.fixture
def refusing_api(loopback_keycloak: Loopback) -> Loopback:
    answers = iter([Answer(401, BOMB, {"Content-Encoding": "gzip"}), Answer(200, b"ok")])
    loopback_keycloak.route(API, lambda received: next(answers))
    return loopback_keycloak


@pytest.mark.parametrize("kind", ["requests", "httpx", "httpx async"])
def test_5_a_gzip_bomb_401_is_not_inflated(refusing_api: Loopback, kind: str) -> None:
    url = f"{refusing_api.url}{API}"
    if kind == "requests":
        response: Any = requests.get(url, auth=ServiceAccountAuth(), timeout=10)
    elif kind == "httpx":
        response = httpx.get(url, auth=HttpxServiceAccountAuth(), timeout=10)
    else:

        async def get() -> httpx.Response:
            async with httpx.AsyncClient(auth=HttpxServiceAccountAuth(), timeout=10) as client:
                return await client.get(url)

        response = run(get())
    assert response.status_code == 200  # retried with a fresh token
    assert len(response.history[0].content) <= REFUSED_BODY_LIMIT  # not the 8 MiB


# --- 6. ids with '/' ---------------------------------------------------------------------------


@pytest.mark.parametrize("user_id", ["UID/groups/GID", "UID%2Fgroups%2FGID", "UID%252Fgroups"])
def test_6_an_id_with_a_slash_is_refused(fake_keycloak: FakeKeycloak, user_id: str) -> None:
    before = len(fake_keycloak.received) if hasattr(fake_keycloak, "received") else None
    with pytest.raises(ValueError, match="leaves the realm"):
        KeycloakAdmin().delete_user(user_id)
    with pytest.raises(ValueError, match="leaves the realm"):
        run(AsyncKeycloakAdmin().remove_user_from_group(user_id, "g"))
    if before is not None:
        assert len(fake_keycloak.received) == before


# --- 7. pooled async clients follow a settings change ----------------------------------------


def test_7_verify_turned_on_reaches_the_pooled_async_client() -> None:
    async def pooled() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        with with_settings(VERIFY=False):
            before = httpx_auth.async_client("default")
        return before, httpx_auth.async_client("default")  # the same event loop

    before, after = run(pooled())
    contexts = [client._transport._pool._ssl_context for client in (before, after)]
    assert [c.verify_mode for c in contexts] == [ssl.CERT_NONE, ssl.CERT_REQUIRED]


# --- 8. the HMAC key inside PyJWT ----------------------------------------------------------------


class InsecureKeyLengthWarning(UserWarning):
    """What PyJWT >= 2.10 warns with; older PyJWT (the lowest allowed, 2.8) does not warn."""


def test_8_a_short_secret_with_warnings_as_errors_is_not_on_the_page(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = f"short-{secrets.token_hex(6)}"  # 18 bytes: PyJWT warns below 32 for HS256
    warning = getattr(jwt, "InsecureKeyLengthWarning", None)
    if warning is None:  # the same failure, raised where newer PyJWT raises it: in its frames
        prepare_key = jwt.algorithms.HMACAlgorithm.prepare_key

        def warn_on_short_keys(self: Any, key: Any) -> bytes:
            prepared: bytes = prepare_key(self, key)
            if len(prepared) < 32:
                warnings.warn("The HMAC key is short", InsecureKeyLengthWarning, stacklevel=1)
            return prepared

        monkeypatch.setattr(jwt.algorithms.HMACAlgorithm, "prepare_key", warn_on_short_keys)
        warning = InsecureKeyLengthWarning
    with with_settings(CLIENT_SECRET=short), warnings.catch_warnings():
        warnings.simplefilter("error", warning)
        exc_info = failure(get_access_token)
    assert exc_info is not None and exc_info[0] is ConfigurationError
    assert "InsecureKeyLengthWarning" in str(exc_info[1])
    assert leaked(exc_info, [short]) == []


# --- 9. the doctor fetches no URL read from Keycloak -----------------------------------------


def test_9_the_doctor_does_not_fetch_a_jwks_url_of_another_host(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    internal = "http://127.0.0.1:9/internal/admin"  # a host the app does not serve
    fake_keycloak.add_client("keys", private_key=pem("ES256"), algorithm="ES256", jwks_url=internal)
    fake_keycloak.client("keys").public_keys = [public_pem(pem("ES256"))]  # Keycloak knows the key
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings("keys")
    out, _, _ = run_command("keycloak_doctor", "--json")
    [jwks] = [f for f in json.loads(out)[0]["findings"] if f["check"] == "jwks"]
    assert jwks["status"] == "WARN" and "not fetched" in jwks["message"]  # not "refused"


def public_pem(private_pem: str) -> str:
    key = load_private_key(private_pem)
    return key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


# --- 10. server text on the terminal and in logs -----------------------------------------------

FORGED = "bad\x1b[2J\nINFO all good"


def test_10_an_error_description_is_escaped(token_endpoint: Any) -> None:
    token_endpoint({"error": "invalid_client", "error_description": FORGED}, status=400)
    _, err, code = run_command("fetch_token")
    assert code != 0 and "\x1b" not in err and "\\x1b[2J\\nINFO" in err


def test_10_a_server_error_is_escaped_in_the_log(
    token_endpoint: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token_endpoint({"error": FORGED}, {"error": FORGED}, token_body(), status=503)
    with (
        caplog.at_level(logging.WARNING, logger="keycloak_jwt_auth"),
        pytest.raises(KeycloakUnavailableError, match="HTTP 503"),
    ):
        get_access_token()
    lines = [record.getMessage() for record in caplog.records]
    assert lines and not any("\x1b" in line or "\n" in line for line in lines)


# --- 11. tiny lifetimes; a lock planted without an expiry ------------------------------------


def test_11_a_tiny_expires_in_is_refused(token_endpoint: Any) -> None:
    token_endpoint(token_body(expires_in=0.001))  # type: ignore[arg-type]
    with pytest.raises(InvalidTokenResponseError, match="tiny expires_in"):
        get_access_token()


def test_11_a_lock_planted_without_expiry_costs_no_stall(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("mine"))
    caches["default"].set(get_token_manager().store.lock_key, "planted", None)  # forever
    started = time.monotonic()
    assert get_access_token() == "mine"
    assert time.monotonic() - started < 2 and len(token_calls(mocked)) == 1


# --- 12. a fork during a renewal; the 401 back-off ---------------------------------------------


def test_12_a_child_forked_during_a_fetch_does_not_wait_for_its_parent(
    token_endpoint: Any,
) -> None:
    mocked = token_endpoint(token_body("from-child"))
    manager = get_token_manager()
    owner = manager.store.try_lock()  # the parent's fetch holds the lock (LocMemCache) ...
    manager._flight = Flight(owner)
    manager.forget_process_state()  # ... when the process forks: this runs in the child
    started = time.monotonic()
    assert get_access_token() == "from-child"
    assert time.monotonic() - started < 2 and len(token_calls(mocked)) == 1


def test_12_the_401_drop_backs_off(token_endpoint: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    now = [time.time()]
    monkeypatch.setattr(time, "time", lambda: now[0])
    token_endpoint(*(token_body(f"t{n}") for n in range(5)))
    manager = get_token_manager()

    def refused_after(seconds: float) -> bool:
        token = manager.get_token()
        now[0] += seconds
        return manager.invalidate(token.value)

    assert refused_after(0)  # a first refusal drops the token
    assert not refused_after(0.5)  # the next one, refused at once, is kept (an API refusing all)
    assert refused_after(0.6)  # ... but only for 1 s: a second revocation costs a second
    assert not refused_after(1.5)  # then 2 s
    assert refused_after(0.6)
