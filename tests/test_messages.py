"""What a newcomer reads when the settings point at the wrong place: each message names the
setting to fix."""

from __future__ import annotations

from typing import Any

import pytest
import responses

from keycloak_jwt_auth import KeycloakAdmin, get_access_token
from keycloak_jwt_auth.exceptions import (
    AdminForbiddenError,
    TLSError,
    TokenEndpointNotFoundError,
    TokenEndpointUnavailableError,
)
from keycloak_jwt_auth.testing import FakeKeycloak

from .conftest import ADMIN_URL


@pytest.mark.parametrize("prefix", ["/auth", "/keycloak"])
def test_a_wrong_path_prefix_points_at_server_url(
    fake_keycloak: FakeKeycloak, settings: Any, prefix: str
) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(SERVER_URL=fake_keycloak.url + prefix)
    with pytest.raises(TokenEndpointNotFoundError) as info:
        get_access_token()
    assert not info.value.realm_missing
    assert str(info.value) == (
        f"Nothing answers at the token endpoint {fake_keycloak.url}{prefix}/realms/demo/protocol/"
        "openid-connect/token (HTTP 404). Check the path of SERVER_URL: Keycloak 17 and later "
        "serve /realms/... at their root (no /auth prefix), and behind a proxy SERVER_URL "
        "includes the proxy's prefix."
    )


def test_a_wrong_realm_names_the_realm(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(REALM="Demo")
    with pytest.raises(TokenEndpointNotFoundError) as info:
        get_access_token()
    assert info.value.realm_missing
    assert str(info.value) == (
        f"Keycloak at {fake_keycloak.url} has no realm 'Demo' (HTTP 404 'Realm does not "
        "exist'). Check REALM: the realm's name as Keycloak's realm selector shows it."
    )


def test_https_to_a_plain_http_port_blames_the_scheme_or_port(
    fake_keycloak: FakeKeycloak, settings: Any
) -> None:
    https = fake_keycloak.url.replace("http://", "https://")
    settings.KEYCLOAK_JWT_AUTH = fake_keycloak.settings(SERVER_URL=https)
    with pytest.raises(TLSError) as info:
        get_access_token()
    assert info.value.plain_http
    assert "check the scheme and the port of SERVER_URL" in str(info.value)
    assert "VERIFY" not in str(info.value)


def test_a_403_says_http_403_once(token_endpoint: Any, mocked: responses.RequestsMock) -> None:
    token_endpoint()
    mocked.get(f"{ADMIN_URL}/users", json={"error": "HTTP 403 Forbidden"}, status=403)
    with pytest.raises(AdminForbiddenError) as info:
        KeycloakAdmin().users()
    assert str(info.value).count("403") == 1
    assert str(info.value).startswith("GET /admin/realms/demo/users: HTTP 403: the service account")


def test_the_logs_of_one_failure_call_the_client_by_one_name(
    settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.KEYCLOAK_JWT_AUTH = {
        **settings.KEYCLOAK_JWT_AUTH,
        "SERVER_URL": "http://127.0.0.1:9",
        "RETRIES": 1,
    }
    with pytest.raises(TokenEndpointUnavailableError):
        get_access_token()
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("keycloak_jwt_auth")]
    assert len(logged) == 2  # the retry, the failure
    assert all(m.startswith("Token request for client default failed") for m in logged)
