"""What the README promises, shown against the real Keycloak 26 server and its demo realm."""

from __future__ import annotations

import time
from typing import Any

import jwt
import pytest
import requests
from django.core.cache import cache

from keycloak_jwt_auth import (
    InvalidClientError,
    KeycloakAdmin,
    ServiceAccountAuth,
    UnauthorizedClientError,
    get_access_token,
    get_token_manager,
)
from keycloak_jwt_auth.client_auth import build_client_assertion
from keycloak_jwt_auth.exceptions import AdminForbiddenError, OAuthError
from keycloak_jwt_auth.tokens.token import AccessToken
from support.proxy import RecordingProxy
from support.realm import realm_secrets
from tests.flows import post_assertion

from .conftest import KEYCLOAK_PORT, client_settings

pytestmark = pytest.mark.keycloak


def claims_of(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


@pytest.mark.contract
@pytest.mark.parametrize(
    ("client", "client_id", "algorithm"),
    [("default", "django-service", "HS256"), ("hs512", "django-service-hs512", "HS512")],
)
def test_token_for_each_algorithm(
    real_keycloak: str, client: str, client_id: str, algorithm: str
) -> None:
    manager = get_token_manager(client)
    assert manager.config.algorithm == algorithm
    claims = claims_of(get_access_token(client))
    assert claims["azp"] == client_id
    assert claims["iss"] == f"{real_keycloak}/realms/demo"
    assert claims["preferred_username"] == f"service-account-{client_id}"


def test_second_call_is_served_from_the_cache(real_keycloak: str) -> None:
    manager = get_token_manager()
    first = get_access_token()
    assert get_access_token() == first
    assert manager.fetch_count == 1
    # As another process would be: only the shared cache holds the token.
    manager._serving = manager.store.memo = None
    assert get_access_token() == first
    assert manager.fetch_count == 1


@pytest.mark.contract
def test_wrong_secret_is_refused_with_keycloaks_words(real_keycloak: str, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = client_settings(
        real_keycloak, CLIENT_SECRET="a-wrong-secret-that-is-long-enough-for-hs256!"
    )
    with pytest.raises(OAuthError) as info:
        get_access_token()
    # Keycloak 26.7 answers a bad signature with 400 unauthorized_client (not invalid_client).
    assert isinstance(info.value, UnauthorizedClientError)
    assert (info.value.error, info.value.status) == ("unauthorized_client", 400)
    assert "Signature on JWT token by client secret" in (info.value.error_description or "")
    assert get_token_manager().fetch_count == 1  # a 4xx is not retried


def test_wrong_algorithm_for_the_enforcing_client(real_keycloak: str, settings: Any) -> None:
    conf = client_settings(real_keycloak)
    conf["CLIENTS"]["hs512"]["ALGORITHM"] = "HS256"
    settings.KEYCLOAK_JWT_AUTH = conf
    with pytest.raises(OAuthError) as info:
        get_access_token("hs512")
    assert isinstance(info.value, InvalidClientError)
    assert "signature algorithm" in (info.value.error_description or "")


def test_replayed_assertion_is_rejected(real_keycloak: str) -> None:
    config = get_token_manager().config
    assertion = build_client_assertion(config)
    with requests.Session() as session:
        assert post_assertion(config, assertion, session=session).value
        with pytest.raises(OAuthError) as info:
            post_assertion(config, assertion, session=session)
    assert (info.value.error, info.value.status) == ("invalid_client", 400)
    assert "reuse" in (info.value.error_description or "")


def test_app_never_reuses_an_assertion(real_keycloak: str) -> None:
    for _ in range(3):
        assert get_access_token(force_refresh=True)  # each fetch would fail on a replay


def test_stale_assertion_is_rejected(real_keycloak: str, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = client_settings(real_keycloak, ASSERTION_LIFETIME=600)
    config = get_token_manager().config
    old = build_client_assertion(config, now=time.time() - 120)  # exp is still 8 min ahead
    with requests.Session() as session, pytest.raises(OAuthError) as info:
        post_assertion(config, old, session=session)
    assert info.value.error == "invalid_client"
    assert "too far in the past" in (info.value.error_description or "")


def test_secret_never_crosses_the_wire(keycloak_server: str, settings: Any) -> None:
    secret = realm_secrets()["django-service"].encode()
    with RecordingProxy("127.0.0.1", KEYCLOAK_PORT) as proxy:
        settings.KEYCLOAK_JWT_AUTH = client_settings(proxy.url)
        get_access_token()
        get_access_token(force_refresh=True)
        KeycloakAdmin().users(max=5)
        wrong = realm_secrets()["django-service"] + "-but-wrong"
        settings.KEYCLOAK_JWT_AUTH = client_settings(proxy.url, CLIENT_SECRET=wrong)
        with pytest.raises(OAuthError):
            get_access_token(force_refresh=True)
    assert len(proxy.token_requests()) == 3
    assert any(r.path.startswith("/admin/realms/demo/users") for r in proxy.requests)
    for recorded in proxy.requests:
        assert secret not in recorded.raw
        assert b"client_secret" not in recorded.raw
    assert all(b"client_assertion=" in r.raw for r in proxy.token_requests())


@pytest.mark.contract
def test_admin_api_with_the_token(real_keycloak: str) -> None:
    usernames = {u["username"] for u in KeycloakAdmin().users(max=100)}
    assert "ada.lovelace" in usernames


@pytest.mark.contract
def test_client_without_roles_gets_403(real_keycloak: str) -> None:
    with pytest.raises(AdminForbiddenError) as info:
        KeycloakAdmin("no-roles").users()
    assert info.value.status == 403
    assert info.value.required_role == "view-users"
    assert "view-users" in str(info.value)


def test_revoked_token_recovers_through_one_401_retry(real_keycloak: str) -> None:
    manager = get_token_manager()
    get_access_token()
    manager.invalidate()
    garbage = AccessToken(value="garbage.not.a-token", expires_at=time.time() + 300)
    cache.set(manager.store.key, garbage.to_json(), 300)
    assert get_access_token() == "garbage.not.a-token"  # what a revoked token looks like
    response = requests.get(
        f"{real_keycloak}/admin/realms/demo/users/count", auth=ServiceAccountAuth(), timeout=10
    )
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert get_access_token() != "garbage.not.a-token"
    assert manager.fetch_count == 2
