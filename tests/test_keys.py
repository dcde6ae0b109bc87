"""private_key_jwt: keys, their public JWKs, the JWKS view and the keycloak_keys command."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from django.conf import settings
from django.core.management import CommandError, ManagementUtility, call_command
from django.test import Client, override_settings

from keycloak_jwt_auth.client_auth import build_client_assertion
from keycloak_jwt_auth.clients import clients, get_client_config
from keycloak_jwt_auth.keys import (
    KEY_ALGORITHMS,
    load_private_key,
    public_jwk,
    thumbprint,
)

from .keyring import key_settings, pem

AUDIENCE = "https://keycloak.test/realms/demo"
PUBLIC_MEMBERS = {"kty", "n", "e", "crv", "x", "y", "kid", "alg", "use"}
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def with_keys(**client: Any) -> Any:
    return override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, **client})


def test_thumbprint_matches_rfc_7638_example() -> None:
    # RFC 7638 section 3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6"
        "tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-"
        "bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("algorithm", KEY_ALGORITHMS)
def test_assertions_verify_with_the_published_key(algorithm: str) -> None:
    with with_keys(**key_settings(algorithm)):
        config = get_client_config()
        keys = clients.published_keys()
    assertion = build_client_assertion(config)

    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": algorithm, "kid": keys[0]["kid"], "typ": "client-authentication+jwt"}
    assert keys[0]["kid"] == thumbprint(keys[0])
    claims = jwt.decode(
        assertion, jwt.PyJWK(keys[0]).key, algorithms=[algorithm], audience=AUDIENCE
    )
    assert claims["iss"] == claims["sub"] == "django-service"
    assert claims["exp"] - claims["iat"] == 60
    with pytest.raises(jwt.InvalidSignatureError):  # and no other key verifies it
        other = public_jwk(load_private_key(pem(algorithm, 1)), algorithm)
        jwt.decode(assertion, jwt.PyJWK(other).key, algorithms=[algorithm], audience=AUDIENCE)


@pytest.mark.parametrize("algorithm", ["RS256", "ES256", "ES384", "ES512", "EdDSA"])
def test_a_public_jwk_has_no_private_member(algorithm: str) -> None:
    key = load_private_key(pem(algorithm))
    jwk = public_jwk(key, algorithm)
    assert set(jwk) <= PUBLIC_MEMBERS and not set(jwk) & PRIVATE_MEMBERS
    # And it is the public key itself: PyJWK reads it as one, not as a private key.
    assert not hasattr(jwt.PyJWK(jwk).key, "private_bytes")
    private = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert private.hex() not in json.dumps(jwk)


def test_key_id_names_the_current_key_and_the_next_key_is_published_by_thumbprint() -> None:
    with with_keys(**key_settings(KEY_ID="key-2026-11", NEXT_PRIVATE_KEY=pem("RS256", 1))):
        config = get_client_config()
        keys = clients.published_keys()
    assert [k["kid"] for k in keys] == ["key-2026-11", thumbprint(keys[1])]
    assert jwt.get_unverified_header(build_client_assertion(config))["kid"] == "key-2026-11"
    assert {k["alg"] for k in keys} == {"RS256"} and {k["use"] for k in keys} == {"sig"}


def test_the_jwks_view_serves_every_key_client_and_nothing_private() -> None:
    clients = {
        # Named clients inherit the top level: this one must drop its NEXT_PRIVATE_KEY.
        "ec": {**key_settings("ES384"), "CLIENT_ID": "ec-client", "NEXT_PRIVATE_KEY": None},
        "broken": {**key_settings("ES256"), "PRIVATE_KEY": "not a key"},  # left out
        "secret": {  # client_secret_jwt: nothing to publish
            "AUTH_METHOD": "client_secret_jwt",
            "ALGORITHM": "HS256",
            "CLIENT_SECRET": settings.TEST_SECRET,
            "PRIVATE_KEY": None,
            "NEXT_PRIVATE_KEY": None,
        },
    }
    # Every client's keys in one set: only with the explicit opt-in (issue 18; check W013).
    with (
        with_keys(**key_settings(NEXT_PRIVATE_KEY=pem("RS256", 1)), CLIENTS=clients),
        override_settings(KEYCLOAK_JWT_AUTH_JWKS_ALL_CLIENTS=True),
    ):
        response = Client().get("/.well-known/jwks.json")  # anonymous: public by design
        head = Client().head("/.well-known/jwks.json")
        post = Client().post("/.well-known/jwks.json")

    assert response.status_code == head.status_code == 200
    assert response["Content-Type"] == "application/jwk-set+json"
    assert response["Cache-Control"] == "public, max-age=60"
    keys = response.json()["keys"]
    assert [(k["kty"], k["alg"]) for k in keys] == [("RSA", "RS256")] * 2 + [("EC", "ES384")]
    assert all(set(k) <= PUBLIC_MEMBERS for k in keys)
    assert post.status_code == 405
    assert settings.TEST_SECRET not in response.content.decode()


def test_the_jwks_follows_a_settings_change() -> None:
    with with_keys(**key_settings()):
        first = clients.published_keys()
    with with_keys(**key_settings(number=1)):
        second = clients.published_keys()
    assert first != second


# --- checks -----------------------------------------------------------------------------------


def encrypted_pem() -> str:
    key = load_private_key(pem("ES256"))
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()


def rsa_1024_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


def ec_p256k1_pem() -> str:
    key = ec.generate_private_key(ec.SECP256K1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def ed448_pem() -> str:  # a key Keycloak cannot verify assertions with
    return (
        ed448.Ed448PrivateKey.generate()
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )


def problem_ids(**client: Any) -> set[str]:
    from keycloak_jwt_auth.settings.rules import client_problems

    with with_keys(**client):
        return {problem.id for problem in client_problems("default")}


@pytest.mark.parametrize(
    ("client", "expected"),
    [
        ({"AUTH_METHOD": "private_key"}, "E014"),
        ({**key_settings(), "PRIVATE_KEY": None}, "E015"),
        ({**key_settings(), "PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nAAAA"}, "E016"),
        ({**key_settings(), "PRIVATE_KEY": "encrypted"}, "E016"),
        ({**key_settings(), "PRIVATE_KEY": pem("ES256")}, "E017"),  # EC key, RS256
        ({**key_settings("ES256"), "PRIVATE_KEY": pem("ES384")}, "E017"),  # P-384, ES256
        ({**key_settings("EdDSA"), "PRIVATE_KEY": pem("RS256")}, "E017"),
        ({**key_settings(), "PRIVATE_KEY": "rsa-1024"}, "E018"),
        ({**key_settings("ES256"), "PRIVATE_KEY": "secp256k1"}, "E017"),
        ({**key_settings(), "ALGORITHM": "HS256"}, "E006"),
        ({"FALLBACK_SECRETS": "one-secret-as-a-string"}, "E020"),
        ({"FALLBACK_SECRETS": ["ok-" * 12, " padded "]}, "E020"),
        ({**key_settings(), "PRIVATE_KEY_FILE": "/etc/hostname"}, "E021"),
        ({**key_settings(), "NEXT_PRIVATE_KEY": pem("RS256")}, "W010"),
        ({**key_settings(), "CLIENT_SECRET": settings.TEST_SECRET}, "W011"),
        ({"PRIVATE_KEY": pem("RS256")}, "W012"),
        ({"KEY_ID": "forgotten"}, "W012"),
        ({"FALLBACK_SECRETS": ["short"]}, "W001"),
        ({**key_settings(), "KEY_ID": 7}, "E011"),
        ({**key_settings(), "PRIVATE_KEY": pem("RS256").encode()}, "E011"),
        ({**key_settings("EdDSA"), "PRIVATE_KEY": "ed448"}, "E016"),
    ],
)
def test_key_settings_problems(client: dict[str, Any], expected: str) -> None:
    replacements = {
        "encrypted": encrypted_pem,
        "rsa-1024": rsa_1024_pem,
        "secp256k1": ec_p256k1_pem,
        "ed448": ed448_pem,
    }
    if client.get("PRIVATE_KEY") in replacements:
        client = {**client, "PRIVATE_KEY": replacements[client["PRIVATE_KEY"]]()}
    assert expected in problem_ids(**client)


def test_good_key_settings_have_no_problem(tmp_path: Path) -> None:
    path = tmp_path / "key.pem"
    path.write_text(pem("ES256"))
    for client in (
        key_settings(),
        key_settings("EdDSA", NEXT_PRIVATE_KEY=pem("EdDSA", 1), KEY_ID="ed-1"),
        {**key_settings("ES256"), "PRIVATE_KEY": None, "PRIVATE_KEY_FILE": path},  # a Path
        {"FALLBACK_SECRETS": ["x" * 40, "y" * 40]},
    ):
        assert problem_ids(**client) == set()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (None, "cannot be read (No such file or directory)"),
        (b"\xff\xfe" * 10, "is not a PEM text file"),
        (b"-" * 70_000, "is larger than 65536 bytes"),
    ],
)
def test_key_files_that_cannot_be_used(tmp_path: Path, content: bytes | None, words: str) -> None:
    from keycloak_jwt_auth.settings.rules import client_problems

    path = tmp_path / "key.pem"
    if content is not None:
        path.write_bytes(content)
    client = {**key_settings(), "PRIVATE_KEY": None, "PRIVATE_KEY_FILE": str(path)}
    with with_keys(**client):
        problems = [p for p in client_problems("default") if p.id == "E016"]
    assert [p.key for p in problems] == ["PRIVATE_KEY_FILE"]
    assert words in problems[0].text


def test_without_cryptography_a_key_client_is_refused_with_the_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from keycloak_jwt_auth.exceptions import ConfigurationError
    from keycloak_jwt_auth.settings import credential_rules, rules

    monkeypatch.setattr(credential_rules, "cryptography_installed", lambda: False)
    with with_keys(**key_settings()):
        problems = rules.client_problems("default")
        assert [p.id for p in problems if p.is_error] == ["E019"]
        assert "keycloak-jwt-auth[keys]" in problems[0].hint
        with pytest.raises(ConfigurationError, match="needs the cryptography package"):
            get_client_config()


def test_cryptography_missing_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    from keycloak_jwt_auth.keys import cryptography_installed

    assert cryptography_installed()
    monkeypatch.setitem(sys.modules, "cryptography", None)  # what an absent package does
    assert not cryptography_installed()


def test_a_broken_key_never_shows_in_the_problem() -> None:
    from keycloak_jwt_auth.settings.rules import client_problems

    broken = pem("RS256").replace("A", "!", 5)
    with with_keys(**{**key_settings(), "PRIVATE_KEY": broken}):
        problems = client_problems("default")
    assert broken[40:80] not in repr(problems)
    assert [p.id for p in problems] == ["E016"]


# --- manage.py keycloak_keys ----------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["RS256", "PS512", "ES256", "ES512", "EdDSA"])
def test_generate_prints_a_key_for_the_algorithm(algorithm: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("keycloak_keys", "generate", "--algorithm", algorithm, stdout=out, stderr=err)
    assert out.getvalue().startswith("-----BEGIN PRIVATE KEY-----\n")
    with with_keys(**{**key_settings(algorithm), "PRIVATE_KEY": out.getvalue()}):
        assert get_client_config().private_key == out.getvalue()  # no problem with it
    assert "umask 077" in err.getvalue() and f"ALGORITHM = '{algorithm}'" in err.getvalue()
    assert "PRIVATE KEY" not in err.getvalue()


def test_generated_rsa_keys_are_3072_bits() -> None:
    out = io.StringIO()
    call_command("keycloak_keys", "generate", stdout=out, stderr=io.StringIO())
    key = load_private_key(out.getvalue())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072


def test_generate_refuses_an_unknown_algorithm() -> None:
    with pytest.raises(CommandError, match="invalid choice: 'HS256'"):
        call_command("keycloak_keys", "generate", "--algorithm", "HS256")


def test_jwks_prints_what_the_view_serves() -> None:
    out = io.StringIO()
    with with_keys(**key_settings("ES256", NEXT_PRIVATE_KEY=pem("ES256", 1))):
        call_command("keycloak_keys", "jwks", stdout=out)
        served = Client().get("/.well-known/jwks.json").json()
    assert json.loads(out.getvalue()) == served
    assert len(served["keys"]) == 2


def test_keycloak_keys_without_cryptography(monkeypatch: pytest.MonkeyPatch) -> None:
    from keycloak_jwt_auth.management.commands import keycloak_keys

    monkeypatch.setattr(keycloak_keys, "cryptography_installed", lambda: False)
    with pytest.raises(CommandError, match=r"keycloak-jwt-auth\[keys\]"):
        call_command("keycloak_keys", "generate")


def test_a_key_read_from_settings_or_a_file_is_masked(tmp_path: Path) -> None:
    from keycloak_jwt_auth.settings.keyfiles import read_pem
    from keycloak_jwt_auth.settings.reading import raw_client_settings

    path = tmp_path / "key.pem"
    path.write_text(pem("ES256"))
    for client in (key_settings("ES256"), {**key_settings("ES256"), "PRIVATE_KEY": None,
                                            "PRIVATE_KEY_FILE": path}):  # fmt: skip
        with with_keys(**client):
            text = read_pem(raw_client_settings(), "PRIVATE_KEY")
            config = get_client_config()
        assert text == pem("ES256") and repr(text) == repr(config.private_key) == "'********'"


def test_generate_runs_no_system_checks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``generate > key.pem`` with PRIVATE_KEY_FILE naming key.pem: the shell empties the file
    first, which the checks call E016; generate reads no settings and must still work."""
    key_file = tmp_path / "key.pem"
    key_file.write_text("")
    broken = {**settings.KEYCLOAK_JWT_AUTH, "AUTH_METHOD": "private_key_jwt"}
    broken |= {"PRIVATE_KEY_FILE": str(key_file), "CLIENT_SECRET": None}
    with override_settings(KEYCLOAK_JWT_AUTH=broken):
        ManagementUtility(["manage.py", "keycloak_keys", "generate"]).execute()
        assert capsys.readouterr().out.startswith("-----BEGIN PRIVATE KEY-----")
        with pytest.raises(SystemExit):  # jwks reads the settings: checked
            ManagementUtility(["manage.py", "keycloak_keys", "jwks"]).execute()
    assert "keycloak_jwt_auth.E016" in capsys.readouterr().err
