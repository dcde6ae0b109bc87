from __future__ import annotations

from typing import Any

import jwt
import pytest
import requests
import responses
from django.contrib.auth.models import User
from django.test import Client, override_settings

from keycloak_jwt_auth.testing import FakeKeycloak

from .conftest import ADMIN_URL, TOKEN_URL, token_body

ACCESS_TOKEN = jwt.encode(
    {
        "azp": "django-service",
        "iss": "https://keycloak.test/realms/demo",
        "exp": 4102444800,
        "scope": "profile email",
        "sub": "secret-ish-subject",
    },
    "k" * 32,
    algorithm="HS256",
)
USERS = [
    {
        "id": f"id-{i}",
        "username": f"user{i}",
        "email": f"user{i}@example.com",
        "firstName": "First",
        "lastName": f"Last{i}",
        "enabled": True,
    }
    for i in range(10)
]

pytestmark = pytest.mark.django_db


@pytest.fixture
def keycloak(token_endpoint: Any) -> responses.RequestsMock:
    mocked = token_endpoint(token_body(ACCESS_TOKEN))
    mocked.get(f"{ADMIN_URL}/users", json=USERS)
    mocked.get(f"{ADMIN_URL}/users/count", json=25)
    assert isinstance(mocked, responses.RequestsMock)
    return mocked


@pytest.fixture
def staff(client: Client) -> Client:
    user = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(user)
    return client


def test_index_shows_token_status_and_users(
    keycloak: responses.RequestsMock, staff: Client
) -> None:
    response = staff.get("/", {"search": "user", "first": "10", "max": "10"})
    html = response.content.decode()
    assert response.status_code == 200
    assert "django-service" in html and "profile email" in html
    assert "user9@example.com" in html
    assert "11–20 of 25" in html
    assert 'id="previous" href="?search=user&amp;first=0&amp;max=10"' in html
    assert 'id="next" href="?search=user&amp;first=20&amp;max=10"' in html
    assert ACCESS_TOKEN not in html
    assert "<link" not in html and "<script src" not in html  # works offline
    assert 'id="activity-token_requests">1<' in html and 'id="activity-served-cache">' in html
    urls = [str(c.request.url) for c in keycloak.calls]
    users_url = next(url for url in urls if url.startswith(f"{ADMIN_URL}/users?"))
    assert "search=user" in users_url and "first=10" in users_url


def test_last_page_has_no_next(keycloak: responses.RequestsMock, staff: Client) -> None:
    html = staff.get("/", {"first": "20"}).content.decode()
    assert 'id="next"' not in html and 'id="previous"' in html


def test_api_users(keycloak: responses.RequestsMock, staff: Client) -> None:
    data = staff.get("/api/users/", {"search": "x", "max": "500", "first": "-3"}).json()
    assert data["count"] == 25 and data["first"] == 0 and data["max"] == 100
    assert data["users"][0] == {key: USERS[0][key] for key in data["users"][0]}
    assert set(data["users"][0]) == {"id", "username", "email", "firstName", "lastName", "enabled"}


def test_api_token_never_shows_the_token(keycloak: responses.RequestsMock, staff: Client) -> None:
    first = staff.get("/api/token/")
    second = staff.get("/api/token/").json()
    assert ACCESS_TOKEN not in first.content.decode()
    data = first.json()
    assert data["client_id"] == "django-service" and data["from_cache"] is False
    assert second["from_cache"] is True
    assert data["claims"] == {
        "azp": "django-service",
        "iss": "https://keycloak.test/realms/demo",
        "exp": 4102444800,
        "scope": "profile email",
    }
    assert 290 <= data["expires_in"] <= 300
    # The process's counters: one request so far; the second look was served from memory.
    assert data["activity"]["token_requests"] == 1
    assert second["activity"]["served"] == {"memory": 1, "cache": 0, "fetch": 1}
    assert 260 <= second["activity"]["next_renewal_in"] <= 270  # 30 s before expiry


def test_keycloak_unreachable_is_503(mocked: responses.RequestsMock, staff: Client) -> None:
    mocked.post(TOKEN_URL, body=requests.ConnectionError("Connection refused"))
    assert staff.get("/api/users/").status_code == 503
    response = staff.get("/")
    assert response.status_code == 503
    assert "Keycloak is unavailable" in response.content.decode()


def test_admin_403_is_502_naming_the_role(token_endpoint: Any, staff: Client) -> None:
    mocked = token_endpoint(token_body(ACCESS_TOKEN))
    mocked.get(f"{ADMIN_URL}/users", json={"error": "HTTP 403 Forbidden"}, status=403)
    response = staff.get("/api/users/")
    assert response.status_code == 502
    assert "realm-management role 'view-users'" in response.json()["error"]
    assert "view-users" in staff.get("/").content.decode()


def test_token_refused_is_502(token_endpoint: Any, staff: Client) -> None:
    token_endpoint(
        {"error": "unauthorized_client", "error_description": "bad signature"}, status=400
    )
    response = staff.get("/api/token/")
    assert response.status_code == 502 and "bad signature" in response.json()["error"]


def test_anonymous_users_are_refused_by_default(
    keycloak: responses.RequestsMock, client: Client
) -> None:
    assert client.get("/api/users/").status_code == 403
    assert client.get("/api/token/").status_code == 403
    response = client.get("/")
    assert response.status_code == 302 and "login" in response["Location"]
    assert len(keycloak.calls) == 0


def test_logged_in_non_staff_is_refused(keycloak: responses.RequestsMock, client: Client) -> None:
    client.force_login(User.objects.create_user("plain", password="pw"))
    assert client.get("/").status_code == 403
    assert client.get("/api/users/").status_code == 403


@override_settings(KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True)
def test_demo_setting_opens_the_views(keycloak: responses.RequestsMock, client: Client) -> None:
    assert client.get("/").status_code == 200
    assert client.get("/api/users/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/api/users/", "/api/token/"])
def test_no_browser_or_proxy_keeps_a_demo_answer(
    keycloak: responses.RequestsMock, staff: Client, path: str
) -> None:
    answers = [staff.get(path), Client().get(path)]  # realm data, and a refusal
    assert [a.status_code for a in answers][0] == 200
    for answer in answers:
        directives = {d.strip() for d in answer["Cache-Control"].split(",")}
        assert {"private", "no-store"} <= directives


@pytest.mark.django_db
def test_async_twins_of_the_json_views(fake_keycloak: FakeKeycloak, settings: Any) -> None:
    # One fake serves both the token (requests, in a worker thread) and the Admin API (httpx).
    import asyncio

    from django.test import AsyncClient

    for i in range(25):
        fake_keycloak.add_user(f"user{i:02}", email=f"user{i:02}@example.com")
    fake_keycloak.add_user("someone-else")
    settings.KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS = True

    async def main() -> tuple[Any, Any]:
        client = AsyncClient()
        users = await client.get("/api/async/users/", {"search": "user", "max": "5"})
        return users, await client.get("/api/async/token/")

    users, token = asyncio.run(main())
    assert users.status_code == 200 and users.json()["count"] == 25
    assert [u["username"] for u in users.json()["users"]] == [f"user0{i}" for i in range(5)]
    assert users["Cache-Control"] and "no-store" in users["Cache-Control"]
    status = token.json()
    assert status["client_id"] == "django-service" and status["from_cache"] is True
    assert {"expires_in", "expires_at", "from_cache", "claims"} <= set(status)
    assert fake_keycloak.token_requests == 1


@pytest.mark.django_db
def test_async_views_are_for_staff_and_map_errors(mocked: responses.RequestsMock) -> None:
    import asyncio

    from django.test import AsyncClient

    mocked.post(TOKEN_URL, body=requests.ConnectionError("refused"))

    async def main() -> tuple[Any, Any]:
        refused = await AsyncClient().get("/api/async/token/")
        with override_settings(KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True):
            unavailable = await AsyncClient().get("/api/async/token/")
        return refused, unavailable

    refused, unavailable = asyncio.run(main())
    assert refused.status_code == 403
    assert unavailable.status_code == 503 and "unavailable" in unavailable.json()["error"]


@pytest.mark.django_db
def test_index_shows_a_users_organizations_and_client_roles(
    fake_keycloak: FakeKeycloak, staff: Client
) -> None:
    fake_keycloak.add_client("demo-portal", secret="p" * 40, service_accounts=False)
    viewer = fake_keycloak.add_client_role("demo-portal", "viewer")
    ada = fake_keycloak.add_user("ada", email="ada@example.com")
    fake_keycloak.add_organization("Acme Research", alias="acme", members=[ada])
    fake_keycloak.client_role_mappings[(ada["id"], viewer["containerId"])] = ["viewer"]
    fake_keycloak.client().roles += ("view-organizations",)
    html = staff.get("/", {"user": ada["id"]}).content.decode()
    assert f"user={ada['id']}" in html  # each username links to its details
    assert '<ul id="user-organizations">\n    <li>Acme Research</li>' in html
    assert "<li><b>demo-portal</b>: viewer</li>" in html


@pytest.mark.django_db
def test_the_details_say_why_organizations_are_missing(
    fake_keycloak: FakeKeycloak, staff: Client
) -> None:
    ada = fake_keycloak.add_user("ada", email="ada@example.com")
    html = staff.get("/", {"user": ada["id"]}).content.decode()  # no view-organizations
    assert "Organizations not shown" in html and "view-organizations" in html
    assert '<ul id="user-client-roles">\n    <li>None.</li>' in html
