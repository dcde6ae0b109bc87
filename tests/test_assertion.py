from __future__ import annotations

import base64
import json
import time

import jwt
import pytest
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.client_auth import (
    ClientSecretJwt,
    build_client_assertion,
    client_authentication,
)
from keycloak_jwt_auth.clients import get_client_config

SECRETS = {
    "HS256": settings.TEST_SECRET,
    "HS384": "s" * 48,
    "HS512": "x" * 64,
}


@pytest.mark.parametrize("algorithm", ["HS256", "HS384", "HS512"])
def test_header_and_claims(algorithm: str) -> None:
    secret = SECRETS[algorithm]
    custom = {**settings.KEYCLOAK_JWT_AUTH, "ALGORITHM": algorithm, "CLIENT_SECRET": secret}
    with override_settings(KEYCLOAK_JWT_AUTH=custom):
        config = get_client_config()
    before = int(time.time())
    assertion = build_client_assertion(config)

    # RFC 10070's explicit type; Keycloak 26.7 accepts it (tests/integration/test_keycloak.py).
    header = jwt.get_unverified_header(assertion)
    assert header == {"alg": algorithm, "typ": "client-authentication+jwt"}
    claims = jwt.decode(
        assertion,
        secret.encode(),
        algorithms=[algorithm],
        audience="https://keycloak.test/realms/demo",
        options={"require": ["iss", "sub", "aud", "iat", "exp", "jti"]},
    )
    assert set(claims) == {"iss", "sub", "aud", "iat", "exp", "jti"}
    assert claims["iss"] == claims["sub"] == "django-service"
    assert claims["aud"] == "https://keycloak.test/realms/demo"  # one string, not a list
    assert before <= claims["iat"] <= int(time.time())
    assert claims["exp"] == claims["iat"] + 60


def test_signature_fails_with_another_secret() -> None:
    assertion = build_client_assertion(get_client_config())
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            assertion,
            b"another secret of enough length 0123456789",
            algorithms=["HS256"],
            audience="https://keycloak.test/realms/demo",
        )


def test_audience_and_lifetime_settings() -> None:
    custom = {
        **settings.KEYCLOAK_JWT_AUTH,
        "AUDIENCE": "https://aud.test",
        "ASSERTION_LIFETIME": 30,
    }
    with override_settings(KEYCLOAK_JWT_AUTH=custom):
        config = get_client_config()
    claims = jwt.decode(
        build_client_assertion(config, now=1_000_000), options={"verify_signature": False}
    )
    assert claims["aud"] == "https://aud.test"
    assert (claims["iat"], claims["exp"]) == (1_000_000, 1_000_030)


def test_jti_is_unique_and_long_over_100k_assertions() -> None:
    config = get_client_config()
    jtis = set()
    for _ in range(100_000):
        payload = build_client_assertion(config).split(".")[1]
        jtis.add(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["jti"])
    assert len(jtis) == 100_000
    shortest = min(len(base64.urlsafe_b64decode(j + "=" * (-len(j) % 4))) for j in jtis)
    assert shortest * 8 >= 128


def test_secret_is_not_in_the_assertion() -> None:
    assertion = build_client_assertion(get_client_config())
    decoded = b"".join(
        base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)) for part in assertion.split(".")
    )
    assert settings.TEST_SECRET.encode() not in decoded
    assert settings.TEST_SECRET not in assertion


def test_client_authentication_never_shows_the_secret() -> None:
    method = client_authentication(get_client_config())
    assert isinstance(method, ClientSecretJwt)
    assert settings.TEST_SECRET not in repr(method)
    assert repr(method) == "ClientSecretJwt(client='default', secrets=1)"
    assert settings.TEST_SECRET not in repr(method.candidates())


def test_the_typ_header_can_be_plain_jwt_for_older_servers() -> None:
    with override_settings(
        KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "ASSERTION_TYP": "JWT"}
    ):
        assertion = build_client_assertion(get_client_config())
    assert jwt.get_unverified_header(assertion)["typ"] == "JWT"
