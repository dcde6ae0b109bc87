"""private_key_jwt against the real Keycloak, which reads the public keys from this app's JWKS
view (served by the test process on the port the demo realm names)."""

from __future__ import annotations

import io
import json
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import requests
from django.core.management import call_command
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from keycloak_jwt_auth import InvalidClientError, get_access_token, get_token_manager
from keycloak_jwt_auth.client_auth import KeySigner, build_client_assertion
from keycloak_jwt_auth.keys import KEY_ALGORITHMS, load_private_key, public_jwk
from support.proxy import RecordingProxy
from tests.flows import post_assertion
from tests.keyring import pem

from .conftest import (
    FAMILY_CLIENTS,
    KEYCLOAK_PORT,
    JwksServer,
    client_settings,
    key_client,
    with_key_clients,
)

pytestmark = pytest.mark.keycloak

PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi")


@pytest.fixture
def key_clients(keycloak_server: str, jwks_server: JwksServer, settings: Any) -> JwksServer:
    settings.KEYCLOAK_JWT_AUTH = with_key_clients(keycloak_server)
    return jwks_server


@pytest.mark.contract
@pytest.mark.parametrize("algorithm", KEY_ALGORITHMS)
def test_keycloak_accepts_every_algorithm(key_clients: JwksServer, algorithm: str) -> None:
    token = get_token_manager(algorithm).get_token(force_refresh=True)
    assert token.unverified_claims()["azp"] == FAMILY_CLIENTS[algorithm[:2]]
    assert key_clients.fetches  # Keycloak read the keys from the JWKS view


def test_a_key_missing_from_the_jwks_is_refused_in_keycloaks_words(key_clients: JwksServer) -> None:
    config = get_token_manager("ES256").config
    stranger = KeySigner(pem("ES256", 7), "ES256", None, "JWT", "PRIVATE_KEY")
    with pytest.raises(InvalidClientError) as info:
        post_assertion(config, build_client_assertion(config, stranger), session=requests.Session())
    assert info.value.error_description == "Unable to load public key"


def test_a_key_client_that_may_not_use_the_algorithm(keycloak_server: str, settings: Any) -> None:
    # django-keys-rotation's "Signature algorithm" is RS256: Keycloak refuses PS256 outright.
    rotation = key_client("django-keys-rotation", "PS256", pem("PS256"))
    settings.KEYCLOAK_JWT_AUTH = with_key_clients(keycloak_server, ps=rotation)
    with pytest.raises(InvalidClientError, match="Invalid signature algorithm"):
        get_access_token("ps")


def test_fetch_token_decodes_a_key_clients_token(key_clients: JwksServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    call_command("fetch_token", "--client", "EdDSA", "--decode", stdout=out, stderr=err)
    assert json.loads(out.getvalue())["azp"] == "django-keys-eddsa"
    assert "without verifying" in err.getvalue()


def test_key_rotation_never_fails_a_token_request(
    keycloak_server: str, jwks_server: JwksServer, settings: Any
) -> None:
    """The README's rotation, with Keycloak reading the JWKS: publish the next key, let it sign
    (the old one still published), drop the old one. Every call fetches a new token."""
    old, new = pem("RS256", 20), pem("RS256", 21)
    kids = {kid_of(old): "old", kid_of(new): "new"}
    phases = [
        ("old key", old, None, 2),
        ("old key, new key published", old, new, 2),
        # Keycloak re-reads the JWKS for an unknown kid at most every 10 s: calls in that
        # window are refused with the new key and signed again with the old one.
        ("new key signs, old key still published", new, old, 14),
        ("new key only", new, None, 2),
    ]
    calls, failures, started = 0, 0, time.time()
    with RecordingProxy("127.0.0.1", KEYCLOAK_PORT) as proxy:
        for _phase, current, upcoming, count in phases:
            rotation = key_client("django-keys-rotation", "RS256", current)
            rotation["NEXT_PRIVATE_KEY"] = upcoming
            settings.KEYCLOAK_JWT_AUTH = with_key_clients(proxy.url, rotation=rotation)
            for _ in range(count):
                calls += 1
                try:
                    get_access_token("rotation", force_refresh=True)
                except InvalidClientError:
                    failures += 1
                time.sleep(1)
    signed = [(kids[kid_in(r.raw)], r.status) for r in proxy.token_requests()]
    fetches = [t for t in jwks_server.fetches if t >= started]
    print(
        f"\nkey rotation: {calls} calls, {failures} failed, {len(signed)} token requests "
        f"({sum(s != 200 for _, s in signed)} refused), Keycloak read the JWKS {len(fetches)} "
        f"times; signed with: {signed}"
    )
    assert failures == 0
    assert signed[-3:] == [("new", 200)] * 3  # the new key alone at the end
    assert ("new", 200) in signed[4:-2]  # Keycloak took the new key during the swap phase


def kid_of(key: str) -> str:
    return public_jwk(load_private_key(key), "RS256")["kid"]


def kid_in(raw: bytes) -> str:
    body = raw.split(b"\n\n", 1)[1].decode()  # after the headers
    return str(jwt.get_unverified_header(parse_qs(body)["client_assertion"][0])["kid"])


def test_no_private_key_and_no_secret_crosses_the_wire(
    keycloak_server: str, jwks_server: JwksServer, settings: Any
) -> None:
    fallback = client_settings(keycloak_server)["CLIENT_SECRET"]
    wrong_first = "a-new-secret-keycloak-does-not-know-yet-0123456789"
    with RecordingProxy("127.0.0.1", KEYCLOAK_PORT) as proxy:
        settings.KEYCLOAK_JWT_AUTH = with_key_clients(
            proxy.url, rotating={"CLIENT_SECRET": wrong_first, "FALLBACK_SECRETS": [fallback]}
        )
        for algorithm in ("RS256", "ES512", "EdDSA"):
            get_access_token(algorithm, force_refresh=True)
        get_access_token("rotating", force_refresh=True)  # refused, then the fallback
    assert [r.status for r in proxy.token_requests()] == [200, 200, 200, 400, 200]
    everything = b"".join(r.raw for r in proxy.requests) + jwks_server_answers(jwks_server)
    for algorithm in ("RS256", "ES512", "EdDSA"):
        for secret_part in private_parts(pem(algorithm)):
            assert secret_part not in everything
    for secret in (fallback, wrong_first):
        assert secret.encode() not in everything


def private_parts(key_pem: str) -> list[bytes]:
    """The PEM's base64 lines, and the private JWK members (d, p, q, ...) as base64url."""
    lines = [line.encode() for line in key_pem.splitlines() if "-----" not in line]
    key = load_private_key(key_pem)
    kty = public_jwk(key, "RS256")["kty"]
    writers: dict[str, Any] = {"RSA": RSAAlgorithm, "EC": ECAlgorithm, "OKP": OKPAlgorithm}
    writer = writers[kty]
    private_jwk = writer.to_jwk(key, as_dict=True)
    members = [private_jwk[name] for name in PRIVATE_MEMBERS if name in private_jwk]
    assert members  # d at least
    return lines + [member.encode() for member in members]


def jwks_server_answers(jwks_server: JwksServer) -> bytes:
    client_ids = [*FAMILY_CLIENTS.values(), "django-keys-rotation"]
    urls = [f"{jwks_server.url}/{client_id}.json" for client_id in client_ids]
    return b"".join(requests.get(url, timeout=10).content for url in urls)
