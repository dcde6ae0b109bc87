from __future__ import annotations

import io
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.settings import CHECKS_REFERENCE, credential_rules
from keycloak_jwt_auth.settings.problems import CHECKS

from .keyring import key_settings, pem

BASE = settings.KEYCLOAK_JWT_AUTH
SHARED = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:6399/0",
    }
}


def ids(*, deploy: bool = False, **overrides: Any) -> list[str]:
    overrides.setdefault("CACHES", SHARED)
    with override_settings(**overrides):
        messages = run_checks(include_deployment_checks=deploy, tags=["keycloak_jwt_auth"])
    return sorted(str(m.id) for m in messages)


def test_a_good_configuration_is_clean() -> None:
    assert ids() == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SERVER_URL": ""}, "E002"),
        ({"REALM": None}, "E003"),
        ({"CLIENT_ID": ""}, "E004"),
        ({"CLIENT_SECRET": ""}, "E005"),
        ({"ALGORITHM": "RS256"}, "E006"),
        ({"SERVER_URL": "keycloak.test"}, "E007"),
        ({"SERVER_URL": "https://kc.test/realms/demo"}, "E007"),
        ({"TOKEN_ENDPOINT": "ftp://kc.test/token"}, "E007"),
        ({"CACHE_ALIAS": "nope"}, "E008"),
        ({"ASSERTION_LIFETIME": 0}, "E009"),
        ({"TIMEOUT": (1, 2, 3)}, "E009"),
        ({"TIMEOUT": (5,)}, "E009"),
        ({"REFRESH_MARGIN": "soon"}, "E009"),
        ({"CLIENT_SECRET": "short"}, "W001"),
        ({"ALGORITHM": "HS512", "CLIENT_SECRET": "s" * 48}, "W001"),
        ({"SERVER_URLS": "typo"}, "W004"),
        ({"SERVER_URL": "https://kc.test/a b"}, "E007"),
        ({"SERVER_URL": "https://kc.test?x=1"}, "E007"),
        ({"SERVER_URL": "https://user@kc.test"}, "E007"),
        ({"SERVER_URL": "//kc.test"}, "E007"),
        ({"LOCK_TIMEOUT": float("inf")}, "E009"),
        ({"ASSERTION_LIFETIME": 0.5}, "E009"),
        ({"VERIFY": 0}, "E010"),
        ({"VERIFY": ""}, "E010"),
        ({"VERIFY": "false"}, "E010"),
        ({"VERIFY": "/no/such/ca-bundle.pem"}, "E010"),
        ({"SCOPE": ["email", "profile"]}, "E011"),
        ({"AUDIENCE": ["https://a.test", "https://b.test"]}, "E011"),
        ({"CLIENT_SECRET": " " + settings.TEST_SECRET + "\n"}, "E012"),
        ({"REALM": ".."}, "E013"),
        ({"LOCK_TIMEOUT": 10}, "W005"),
        ({"ASSERTION_LIFETIME": 300}, "W006"),
    ],
)
def test_each_problem_has_its_id(change: dict[str, Any], expected: str) -> None:
    assert ids(KEYCLOAK_JWT_AUTH={**BASE, **change}) == [f"keycloak_jwt_auth.{expected}"]


def test_missing_setting_reports_every_required_key() -> None:
    assert ids(KEYCLOAK_JWT_AUTH=None) == [f"keycloak_jwt_auth.E00{n}" for n in (2, 3, 4, 5)]


def test_wrong_shape() -> None:
    assert ids(KEYCLOAK_JWT_AUTH=["a"]) == ["keycloak_jwt_auth.E001"]
    assert ids(KEYCLOAK_JWT_AUTH={**BASE, "CLIENTS": {"x": "y"}}) == ["keycloak_jwt_auth.E001"]


def test_named_clients_are_checked_too() -> None:
    clients = {"reports": {"CLIENT_ID": "", "ALGORITHM": "HS999"}}
    with override_settings(KEYCLOAK_JWT_AUTH={**BASE, "CLIENTS": clients}, CACHES=SHARED):
        messages = run_checks(tags=["keycloak_jwt_auth"])
    assert sorted(str(m.id) for m in messages) == [
        "keycloak_jwt_auth.E004",
        "keycloak_jwt_auth.E006",
    ]
    assert all("['CLIENTS']['reports']" in m.msg for m in messages)


def test_per_process_and_dummy_caches_warn() -> None:
    locmem = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    dummy = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
    assert ids(CACHES=locmem) == ["keycloak_jwt_auth.W002"]
    assert ids(CACHES=dummy) == ["keycloak_jwt_auth.W003"]


def test_caches_that_cannot_share_one_token_warn(tmp_path: Any) -> None:
    files = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }
    replicas = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ["redis://primary.test:6379", "redis://replica.test:6379"],
        }
    }
    assert ids(CACHES=files) == ["keycloak_jwt_auth.W007"]
    database = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "token_cache",
        }
    }
    assert ids(CACHES=database) == ["keycloak_jwt_auth.W009"]
    assert ids(CACHES=replicas) == ["keycloak_jwt_auth.W008"]
    replicas["default"]["LOCATION"] = "redis://primary.test:6379,redis://replica.test:6379"
    assert ids(CACHES=replicas) == ["keycloak_jwt_auth.W008"]


def test_deploy_checks() -> None:
    plain = {**BASE, "SERVER_URL": "http://keycloak.test"}
    assert ids(deploy=True, KEYCLOAK_JWT_AUTH=plain) == ["keycloak_jwt_auth.W101"]
    no_tls = {**BASE, "VERIFY": False}
    assert ids(deploy=True, KEYCLOAK_JWT_AUTH=no_tls) == ["keycloak_jwt_auth.W102"]
    assert ids(deploy=True, KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True) == [
        "keycloak_jwt_auth.W103"
    ]
    # With DEBUG on too (issue 18): the deployment check judges what will be deployed.
    assert ids(deploy=True, DEBUG=True, KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True) == [
        "keycloak_jwt_auth.W103"
    ]
    assert ids(deploy=False, KEYCLOAK_JWT_AUTH=plain) == []


def test_messages_never_show_the_secret() -> None:
    with override_settings(
        KEYCLOAK_JWT_AUTH={**BASE, "CLIENT_SECRET": "short-secret-xyz"}, CACHES=SHARED
    ):
        text = " ".join(f"{m.msg} {m.hint}" for m in run_checks(include_deployment_checks=True))
    assert "short-secret-xyz" not in text


def test_registered_and_reported_by_the_check_command() -> None:
    broken = {**BASE, "CLIENT_SECRET": "", "ALGORITHM": "none"}
    with override_settings(KEYCLOAK_JWT_AUTH=broken), pytest.raises(SystemCheckError) as info:
        call_command("check")
    text = str(info.value)
    assert "keycloak_jwt_auth.E005" in text and "keycloak_jwt_auth.E006" in text
    assert "HINT: Set it to the client's secret" in text


def client(**change: Any) -> dict[str, Any]:
    return {"KEYCLOAK_JWT_AUTH": {**BASE, **change}}


def rsa_1024_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    encoding, private = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    return key.private_bytes(encoding, private, serialization.NoEncryption()).decode()


def federated(**claims: Any) -> dict[str, Any]:
    """A federated_jwt client whose ASSERTION_FILE holds a JWT with ``claims`` over good ones."""
    issuer = f"{str(BASE['SERVER_URL']).rstrip('/')}/realms/{BASE['REALM']}"
    good = {"iss": "https://k8s.test", "sub": "s", "aud": [issuer], "exp": time.time() + 600}
    token = jwt.encode({**good, **claims}, "unverified-here-" * 3, algorithm="HS256")
    with tempfile.NamedTemporaryFile("w", suffix=".jwt", delete=False) as file:
        file.write(token)
    return client(AUTH_METHOD="federated_jwt", CLIENT_SECRET=None, ASSERTION_FILE=file.name)


# One configuration per check in the table that makes it fire.
FIRING: dict[str, Callable[[], dict[str, Any]]] = {
    "E001": lambda: {"KEYCLOAK_JWT_AUTH": ["a"]},
    "E002": lambda: client(SERVER_URL=""),
    "E003": lambda: client(REALM=None),
    "E004": lambda: client(CLIENT_ID=""),
    "E005": lambda: client(CLIENT_SECRET=""),
    "E006": lambda: client(ALGORITHM="RS256"),
    "E007": lambda: client(SERVER_URL="keycloak.test"),
    "E008": lambda: client(CACHE_ALIAS="nope"),
    "E009": lambda: client(RETRIES=-1),
    "E010": lambda: client(VERIFY=0),
    "E011": lambda: client(SCOPE=["email"]),
    "E012": lambda: client(CLIENT_SECRET=settings.TEST_SECRET + "\n"),
    "E013": lambda: client(REALM=".."),
    "E014": lambda: client(AUTH_METHOD="private_key"),
    "E015": lambda: client(**{**key_settings(), "PRIVATE_KEY": None}),
    "E016": lambda: client(**key_settings(PRIVATE_KEY="not a key")),
    "E017": lambda: client(**key_settings(PRIVATE_KEY=pem("ES256"))),
    "E018": lambda: client(**key_settings(PRIVATE_KEY=rsa_1024_pem())),
    "E019": lambda: client(**key_settings()),  # with cryptography "missing", below
    "E020": lambda: client(FALLBACK_SECRETS="one-secret"),
    "E021": lambda: client(**key_settings(PRIVATE_KEY_FILE="/etc/hostname")),
    "E022": lambda: client(LOCK_TIMEOUT=10**400),  # math.isfinite raises OverflowError
    # A named client inherits CLIENT_ID and KEY_ID: its other key shares the kid in one JWKS.
    "E023": lambda: client(
        **key_settings(KEY_ID="k1"), CLIENTS={"b": {"PRIVATE_KEY": pem("RS256", 1)}}
    ),
    "E030": lambda: client(DPOP_KEY="a shared secret, not a key"),
    "E031": lambda: client(DPOP_KEY=pem("ES256"), DPOP_ALGORITHM="RS256"),
    "E032": lambda: client(DPOP_KEY=pem("ES256")),  # with cryptography "missing", below
    "E040": lambda: client(AUTH_METHOD="federated_jwt", CLIENT_SECRET=None),
    "E041": lambda: client(AUTH_METHOD="federated_jwt", ASSERTION_FILE="/nonexistent/token"),
    "E042": lambda: client(AUTH_METHOD="federated_jwt", ASSERTION_FILE="/etc/hostname"),
    "E043": lambda: federated(aud="https://elsewhere.test"),
    "E044": lambda: federated(exp=time.time() - 10),
    "E045": lambda: client(AUTH_METHOD="federated_jwt", ASSERTION_PROVIDER="no.such.thing"),
    "W001": lambda: client(CLIENT_SECRET="short"),
    "W002": lambda: {"CACHES": {"default": {"BACKEND": f"{BACKENDS}.locmem.LocMemCache"}}},
    "W003": lambda: {"CACHES": {"default": {"BACKEND": f"{BACKENDS}.dummy.DummyCache"}}},
    "W004": lambda: client(SERVER_URLS="typo"),
    "W005": lambda: client(LOCK_TIMEOUT=10),
    "W006": lambda: client(ASSERTION_LIFETIME=300),
    "W007": lambda: {"CACHES": {"default": {"BACKEND": f"{BACKENDS}.filebased.FileBasedCache"}}},
    "W008": lambda: {"CACHES": {"default": {**SHARED["default"], "LOCATION": "r://a,r://b"}}},
    "W009": lambda: {"CACHES": {"default": {"BACKEND": f"{BACKENDS}.db.DatabaseCache"}}},
    "W010": lambda: client(**key_settings(NEXT_PRIVATE_KEY=pem("RS256"))),
    "W011": lambda: client(**key_settings(CLIENT_SECRET=settings.TEST_SECRET)),
    "W012": lambda: client(KEY_ID="forgotten"),
    "W040": lambda: {
        **federated(),
        "KEYCLOAK_JWT_AUTH": {
            **federated()["KEYCLOAK_JWT_AUTH"],
            "CLIENT_SECRET": settings.TEST_SECRET,
        },
    },
    "W041": lambda: client(ASSERTION_FILE="/var/run/secrets/tokens/token"),
    "W030": lambda: client(**key_settings("ES256"), DPOP_KEY=pem("ES256")),
    "W031": lambda: client(DPOP_ALGORITHM="ES256"),
    "W101": lambda: client(SERVER_URL="http://keycloak.test"),
    "W102": lambda: client(VERIFY=False),
    "W013": lambda: {"KEYCLOAK_JWT_AUTH_JWKS_ALL_CLIENTS": True},
    "W103": lambda: {"KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS": True},
}
BACKENDS = "django.core.cache.backends"


def test_every_check_in_the_table_has_a_firing_example_and_its_level() -> None:
    assert sorted(FIRING) == sorted(CHECKS)
    for check_id, check in CHECKS.items():
        assert check.id == check_id and check.summary
        assert check.level == {"E": "error", "W": "warning"}[check_id[0]]
        assert check.deploy is check_id.startswith("W1")
    assert [(c.id, c.level, c.summary) for c in CHECKS.values()] == CHECKS_REFERENCE


@pytest.mark.parametrize("check_id", sorted(FIRING))
def test_each_check_fires_and_nothing_outside_the_table_does(
    check_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if check_id in ("E019", "E032"):
        monkeypatch.setattr(credential_rules, "cryptography_installed", lambda: False)
    found = ids(deploy=True, **FIRING[check_id]())
    assert f"keycloak_jwt_auth.{check_id}" in found
    assert {id_.removeprefix("keycloak_jwt_auth.") for id_ in found} <= set(CHECKS)


def found(**overrides: Any) -> dict[str, Any]:
    """Each message's id (without the app's prefix) -> its message and hint."""
    overrides.setdefault("CACHES", SHARED)
    with override_settings(**overrides):
        messages = run_checks(tags=["keycloak_jwt_auth"])
    return {str(m.id).split(".")[-1]: (m.msg, m.hint) for m in messages}


def test_the_locmem_hint_speaks_in_caches_terms_and_says_how_to_silence_it() -> None:
    _, hint = found(CACHES={"default": {"BACKEND": f"{BACKENDS}.locmem.LocMemCache"}})["W002"]
    assert "CACHE_URL" not in hint
    assert "'BACKEND': 'django.core.cache.backends.redis.RedisCache'" in hint
    assert "SILENCED_SYSTEM_CHECKS = ['keycloak_jwt_auth.W002']" in hint
    locmem = {"default": {"BACKEND": f"{BACKENDS}.locmem.LocMemCache"}}
    out, err = io.StringIO(), io.StringIO()
    with override_settings(CACHES=locmem, SILENCED_SYSTEM_CHECKS=["keycloak_jwt_auth.W002"]):
        call_command("check", stdout=out, stderr=err)
    assert "W002" not in out.getvalue() + err.getvalue()


def test_an_unknown_key_close_to_a_known_one_gets_a_did_you_mean() -> None:
    assert found(**client(REFRESH_MARGINS=10))["W004"][1] == "Did you mean REFRESH_MARGIN?"
    assert found(**client(COLOUR="blue"))["W004"][1].startswith("Known keys: ALGORITHM, ")


def test_a_bad_number_gets_the_rule_of_that_number_only() -> None:
    message, hint = found(**client(RETRIES=-1))["E009"]
    assert message.startswith("KEYCLOAK_JWT_AUTH['RETRIES'] must be a number")
    assert hint == "RETRIES is a count, 0 or more (default 2)."


def test_an_inherited_unused_secret_is_unset_in_the_named_client() -> None:
    keys = {"AUTH_METHOD": "private_key_jwt", **key_settings()}
    keys.pop("CLIENT_SECRET", None)
    _, hint = found(**client(CLIENTS={"signer": keys}))["W011"]
    assert hint.startswith("It is inherited from the top level: set 'CLIENT_SECRET': None in ")
    assert "CLIENTS['signer']" in hint
    assert "W011" not in found(**client(CLIENTS={"signer": {**keys, "CLIENT_SECRET": None}}))


def test_no_setting_at_all_says_so() -> None:
    with override_settings(CACHES=SHARED):
        del settings.KEYCLOAK_JWT_AUTH
        messages = run_checks(tags=["keycloak_jwt_auth"])
        with pytest.raises(ConfigurationError) as refused:
            get_client_config()
    assert {m.msg for m in messages} >= {
        "KEYCLOAK_JWT_AUTH['SERVER_URL'] is not set: settings.py has no KEYCLOAK_JWT_AUTH."
    }
    assert str(refused.value) == (
        "Keycloak client 'default' cannot be used: SERVER_URL, REALM, CLIENT_ID, CLIENT_SECRET "
        "are not set: settings.py has no KEYCLOAK_JWT_AUTH. Run 'manage.py check' for hints."
    )
