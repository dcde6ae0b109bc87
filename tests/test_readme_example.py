"""The README's example of testing a user's view with the fake_keycloak fixture, as written."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpRequest, JsonResponse
from django.test import Client
from django.urls import path

from keycloak_jwt_auth import KeycloakAdmin
from keycloak_jwt_auth.exceptions import KeycloakUnavailableError
from keycloak_jwt_auth.testing import FakeKeycloak

pytestmark = pytest.mark.urls(__name__)


def staff_directory(request: HttpRequest) -> JsonResponse:
    users = KeycloakAdmin().users(search=request.GET.get("q"), brief=True)
    return JsonResponse({"usernames": [user["username"] for user in users]})


urlpatterns = [path("directory/", staff_directory)]


def test_directory_lists_matching_users(fake_keycloak: FakeKeycloak, client: Client) -> None:
    fake_keycloak.add_user("ada", email="ada@example.com")
    fake_keycloak.add_user("grace", email="grace@example.com")

    response = client.get("/directory/", {"q": "ada"})

    assert response.json() == {"usernames": ["ada"]}
    assert fake_keycloak.token_requests == 1


def test_directory_when_keycloak_is_down(fake_keycloak: FakeKeycloak, client: Client) -> None:
    with fake_keycloak.failing("down"), pytest.raises(KeycloakUnavailableError):
        client.get("/directory/")


def test_the_fixture_sets_the_setting(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    # the fake's connection keys over the project's own setting (tests.settings: RETRIES)
    assert {"RETRIES": 2, **fake_keycloak.settings()} == settings.KEYCLOAK_JWT_AUTH
