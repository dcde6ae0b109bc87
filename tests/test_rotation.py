"""Zero-downtime rotation: FALLBACK_SECRETS for client_secret_jwt, NEXT_PRIVATE_KEY for
private_key_jwt. A stand-in Keycloak checks each assertion's signature the way Keycloak 26.7
answers (measured: tests/integration/test_private_key_jwt.py, test_secret_rotation.py)."""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from django.conf import settings
from django.core.cache import caches
from django.test import override_settings

from keycloak_jwt_auth import UnauthorizedClientError, get_access_token, get_token_manager
from keycloak_jwt_auth.clients import clients
from keycloak_jwt_auth.exceptions import InvalidClientError, InvalidScopeError
from keycloak_jwt_auth.tokens.store import token_cache_key

from .conftest import TOKEN_URL, reset_app_state
from .keyring import key_settings, pem

OLD = "old-secret-0123456789-0123456789-0123456789"
NEW = "new-secret-0123456789-0123456789-0123456789"
SIGNATURE_FAILED = (
    "Client authentication with client secret signed JWT failed: Signature on JWT token by "
    "client secret  failed validation"
)


class StandInKeycloak:
    """Accepts an assertion signed with one of ``secrets`` or by a key whose kid it knows."""

    def __init__(self, mocked: responses.RequestsMock) -> None:
        self.secrets: set[str] = set()
        self.keys: dict[str, Any] = {}  # kid -> public key
        self.signed_with: list[str] = []  # the secret or kid of each assertion received
        mocked.add_callback(responses.POST, TOKEN_URL, callback=self.answer)

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        assertion = parse_qs(request.body)["client_assertion"][0]
        header = jwt.get_unverified_header(assertion)
        if header["alg"].startswith("HS"):
            for secret in (OLD, NEW, settings.TEST_SECRET):
                try:
                    jwt.decode(assertion, secret, [header["alg"]], options={"verify_aud": False})
                except jwt.InvalidSignatureError:
                    continue
                self.signed_with.append(secret)
                if secret in self.secrets:
                    return ok()
            return refused("unauthorized_client", SIGNATURE_FAILED)
        self.signed_with.append(header["kid"])
        if header["kid"] not in self.keys:
            return refused("invalid_client", "Unable to load public key")
        key = self.keys[header["kid"]]
        jwt.decode(assertion, key, algorithms=[header["alg"]], options={"verify_aud": False})
        return ok()


def ok() -> tuple[int, dict[str, str], str]:
    body = '{"access_token": "t", "expires_in": 300, "token_type": "Bearer"}'
    return 200, {"Content-Type": "application/json"}, body


def refused(error: str, description: str) -> tuple[int, dict[str, str], str]:
    body = f'{{"error": "{error}", "error_description": "{description}"}}'
    return 400, {"Content-Type": "application/json"}, body


@pytest.fixture
def keycloak(mocked: responses.RequestsMock) -> StandInKeycloak:
    return StandInKeycloak(mocked)


@pytest.fixture
def rotating() -> Iterator[None]:
    """The app deployed with the new secret first, the old one as a fallback."""
    with with_client(CLIENT_SECRET=NEW, FALLBACK_SECRETS=[OLD]):
        yield


def with_client(**changes: Any) -> Any:
    return override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, **changes})


def fetch() -> str:
    return get_access_token(force_refresh=True)


def new_process() -> None:
    """What another worker starts with: no memory of this one's, the same shared cache."""
    reset_app_state()


# --- client secrets ---------------------------------------------------------------------------


def test_deploying_the_new_secret_first(
    keycloak: StandInKeycloak, rotating: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keycloak_jwt_auth.client_auth.methods")
    keycloak.secrets = {OLD}  # Keycloak still has the old secret
    fetch()
    assert keycloak.signed_with == [NEW, OLD]
    assert "Keycloak accepted FALLBACK_SECRETS[0] of client default" in caplog.text
    fetch()  # remembered in this process: one request
    new_process()
    fetch()  # and in another process sharing the cache
    assert keycloak.signed_with == [NEW, OLD, OLD, OLD]

    keycloak.secrets = {NEW}  # the rotation in Keycloak
    caplog.clear()
    fetch()
    fetch()
    assert keycloak.signed_with[4:] == [OLD, NEW, NEW]
    assert "Keycloak accepted CLIENT_SECRET of client default" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "accepted" in r.msg]


def test_rotating_in_keycloak_first_while_it_keeps_the_old_secret_valid(
    keycloak: StandInKeycloak, rotating: None
) -> None:
    keycloak.secrets = {OLD, NEW}  # Keycloak's secret rotation: the rotated secret stays valid
    fetch()
    fetch()
    assert keycloak.signed_with == [NEW, NEW]


def test_the_shared_choice_is_a_fingerprint_never_the_secret(
    keycloak: StandInKeycloak, rotating: None
) -> None:
    keycloak.secrets = {OLD}
    fetch()
    config = get_token_manager().config
    stored = caches["default"].get(f"{token_cache_key(config)}:secret")
    assert isinstance(stored, str) and len(stored) == 32
    everything = pickle.dumps([caches["default"].get(k) for k in caches["default"]._cache])  # type: ignore[attr-defined]
    for secret in (OLD, NEW):
        assert secret.encode() not in everything


def test_the_shared_fingerprint_is_hmac_sha256_whatever_djangos_default(
    keycloak: StandInKeycloak, rotating: None
) -> None:
    keycloak.secrets = {OLD}
    fetch()
    stored = caches["default"].get(f"{token_cache_key(get_token_manager().config)}:secret")
    key = hashlib.sha256(b"keycloak_jwt_auth.secret" + settings.SECRET_KEY.encode()).digest()
    assert stored == hmac.new(key, OLD.encode(), hashlib.sha256).hexdigest()[:32]


@pytest.mark.parametrize("poison", ["f" * 32, 42, None, b"\x80not-pickle", {"x": 1}])
def test_a_poisoned_shared_choice_costs_at_most_one_refusal(
    keycloak: StandInKeycloak, rotating: None, poison: object
) -> None:
    keycloak.secrets = {NEW}
    config_key = f"{token_cache_key(get_token_manager().config)}:secret"
    caches["default"].set(config_key, poison)
    fetch()
    assert keycloak.signed_with == [NEW]
    keycloak.secrets = {OLD}
    new_process()
    caches["default"].set(config_key, poison)
    fetch()
    assert keycloak.signed_with == [NEW, NEW, OLD]


def test_every_secret_refused_raises_keycloaks_first_answer(
    keycloak: StandInKeycloak, rotating: None
) -> None:
    keycloak.secrets = set()
    with pytest.raises(UnauthorizedClientError, match="Signature on JWT token by client secret"):
        fetch()
    assert keycloak.signed_with == [NEW, OLD]


def test_other_refusals_are_not_retried_with_another_secret(
    mocked: responses.RequestsMock, rotating: None
) -> None:
    mocked.post(TOKEN_URL, status=400, json={"error": "invalid_scope", "error_description": "x"})
    with pytest.raises(InvalidScopeError):
        fetch()
    assert len(mocked.calls) == 1


def test_without_fallbacks_nothing_is_shared(keycloak: StandInKeycloak) -> None:
    keycloak.secrets = {settings.TEST_SECRET}
    fetch()
    config_key = f"{token_cache_key(get_token_manager().config)}:secret"
    assert caches["default"].get(config_key) is None


# --- private keys -----------------------------------------------------------------------------


def kid_of(number: int) -> str:
    with with_client(**key_settings(number=number)):
        return clients.published_keys()[0]["kid"]


def publish(keycloak: StandInKeycloak, *numbers: int) -> None:
    """What Keycloak has read from the JWKS URL."""
    for number in numbers:
        with with_client(**key_settings(number=number)):
            jwk = clients.published_keys()[0]
        keycloak.keys[jwk["kid"]] = jwt.PyJWK(jwk).key


def test_a_new_key_keycloak_has_not_read_yet_falls_back_to_the_other_published_key(
    keycloak: StandInKeycloak, caplog: pytest.LogCaptureFixture
) -> None:
    old, new = kid_of(0), kid_of(1)
    publish(keycloak, 0)  # Keycloak read the JWKS before the new key was there
    swapped = key_settings(number=1, NEXT_PRIVATE_KEY=pem("RS256", 0))
    with with_client(**swapped):
        fetch()
        assert keycloak.signed_with == [new, old]
        assert "accepted NEXT_PRIVATE_KEY" in caplog.text
        publish(keycloak, 1)  # Keycloak re-read the JWKS
        fetch()
    assert keycloak.signed_with == [new, old, new]  # the current key first, always


def test_a_key_client_without_a_next_key_makes_one_request(keycloak: StandInKeycloak) -> None:
    refused = pytest.raises(InvalidClientError, match="Unable to load public key")
    with with_client(**key_settings(number=1)), refused:
        fetch()
    assert keycloak.signed_with == [kid_of(1)]
