"""KeycloakAdmin and the JSON views against the real Keycloak's demo realm."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from keycloak_jwt_auth import AdminForbiddenError, AdminNotFoundError, KeycloakAdmin
from support.realm import realm_users

pytestmark = pytest.mark.keycloak

USERS = realm_users()


def test_users_count_and_listing_match_the_realm(real_keycloak: str) -> None:
    admin = KeycloakAdmin()
    assert admin.users_count() == len(USERS) == 30
    listed = {u["username"] for u in admin.users(max=100)}
    assert listed == {u["username"] for u in USERS}


def test_paging_walks_every_user_once(real_keycloak: str) -> None:
    admin = KeycloakAdmin()
    pages = [admin.users(first=first, max=7, brief=True) for first in range(0, 35, 7)]
    assert [len(p) for p in pages] == [7, 7, 7, 7, 2]
    assert len({u["id"] for page in pages for u in page}) == 30
    assert [u["username"] for u in admin.iter_users(page_size=7)] == [
        u["username"] for page in pages for u in page
    ]


def test_search(real_keycloak: str) -> None:
    admin = KeycloakAdmin()
    found = admin.users(search="lovelace")
    assert [u["username"] for u in found] == ["ada.lovelace"]
    assert admin.users_count(search="lovelace") == 1
    user = admin.user(found[0]["id"])
    assert user["email"] == "ada.lovelace@example.com"


def test_other_resources(real_keycloak: str) -> None:
    admin = KeycloakAdmin()
    assert admin.realm()["realm"] == "demo"
    assert "offline_access" in {r["name"] for r in admin.realm_roles()}
    assert [c["clientId"] for c in admin.clients(client_id="django-service")] == ["django-service"]
    assert admin.groups() == []
    assert admin.get("users/count", search="turing") == 1


def test_unknown_id_and_escape_attempt_stay_inside_the_realm(real_keycloak: str) -> None:
    with pytest.raises(AdminNotFoundError) as info:
        KeycloakAdmin().user("no-such-user")
    assert info.value.path == "/admin/realms/demo/users/no-such-user"
    with pytest.raises(ValueError, match="leaves the realm"):  # refused before anything is sent
        KeycloakAdmin().user("../../master")


def test_role_less_client_gets_403_naming_the_role(real_keycloak: str) -> None:
    with pytest.raises(AdminForbiddenError) as info:
        KeycloakAdmin("no-roles").realm_roles()
    assert info.value.required_role == "view-realm"


@pytest.mark.django_db
def test_json_views_end_to_end(real_keycloak: str, settings: Any, client: Client) -> None:
    settings.KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS = True
    query: dict[str, str | int] = {"search": "", "first": 25, "max": 10}
    page = client.get("/api/users/", query).json()
    assert page["count"] == 30 and len(page["users"]) == 5
    token = client.get("/api/token/").json()
    assert token["claims"]["azp"] == "django-service"
    assert token["from_cache"] is True  # the users call above fetched it
    searched = client.get("/api/users/", {"search": "hopper"}).json()
    assert [u["username"] for u in searched["users"]] == ["grace.hopper"]


@pytest.mark.django_db
def test_views_with_the_role_less_client_answer_502(
    real_keycloak: str, settings: Any, client: Client
) -> None:
    conf = dict(settings.KEYCLOAK_JWT_AUTH)
    no_roles = conf["CLIENTS"]["no-roles"]
    settings.KEYCLOAK_JWT_AUTH = {**conf, **no_roles}
    settings.KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS = True
    response = client.get("/api/users/")
    assert response.status_code == 502
    assert "view-users" in response.json()["error"]
