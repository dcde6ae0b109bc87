"""The demo page's "create user" form: staff only (the demo views' rule), POST with a CSRF
token, an Admin API write with the write client, and back to the page with a message. Keycloak
is a FakeKeycloak: the default client may only read, the write client has manage-users."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client, override_settings

from keycloak_jwt_auth.testing import READ_ROLES, FakeKeycloak

pytestmark = pytest.mark.django_db

CSRF_SECRET = "a" * 32  # Django's CSRF secrets are 32 letters and digits
NEW_USER = {"username": "grace", "email": "grace@example.com", "first_name": "Grace"}
WRITE_ROLES = (*READ_ROLES, "manage-users")


@pytest.fixture
def keycloak(fake_keycloak: FakeKeycloak, settings: Any) -> Iterator[FakeKeycloak]:
    fake_keycloak.add_client("django-provisioning", secret="w" * 40, roles=WRITE_ROLES)
    writer = fake_keycloak.settings("django-provisioning")
    conf = {**fake_keycloak.settings(), "CLIENTS": {"writer": writer}}
    with override_settings(KEYCLOAK_JWT_AUTH=conf, KEYCLOAK_JWT_AUTH_DEMO_WRITE_CLIENT="writer"):
        yield fake_keycloak


@pytest.fixture
def staff() -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user("staff", password="pw", is_staff=True))
    return client


def with_csrf_token(client: Client) -> dict[str, str]:
    """The form's fields and a CSRF token matching the client's cookie (as a rendered form
    and a browser would send them)."""
    client.cookies["csrftoken"] = CSRF_SECRET
    return {**NEW_USER, "csrfmiddlewaretoken": CSRF_SECRET}


def usernames(keycloak: FakeKeycloak) -> list[str]:
    return [user["username"] for user in keycloak.users]


def test_staff_create_a_user_and_see_it(keycloak: FakeKeycloak, staff: Client) -> None:
    response = staff.post("/users/create/", with_csrf_token(staff))
    assert (response.status_code, response["Location"]) == (302, "/?search=grace")
    [grace] = [user for user in keycloak.users if user["username"] == "grace"]
    assert (grace["email"], grace["firstName"], grace["enabled"]) == (
        "grace@example.com",
        "Grace",
        True,
    )  # written with the write client: the default one may not (manage-users)
    [message] = list(response.wsgi_request._messages)  # type: ignore[attr-defined]
    assert (message.level_tag, str(message)) == ("success", "Created user 'grace'.")


def test_without_a_csrf_token_nothing_is_written(keycloak: FakeKeycloak, staff: Client) -> None:
    assert staff.post("/users/create/", NEW_USER).status_code == 403
    assert "grace" not in usernames(keycloak)


def test_get_is_not_allowed_and_anonymous_users_are_sent_to_log_in(
    keycloak: FakeKeycloak,
) -> None:
    client = Client()
    assert client.get("/users/create/").status_code == 405
    response = client.post("/users/create/", NEW_USER)
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(User.objects.create_user("plain", password="pw"))
    assert client.post("/users/create/", NEW_USER).status_code == 403
    assert "grace" not in usernames(keycloak)


def refusal(response: Any) -> str:
    assert (response.status_code, response["Location"]) == (302, "/")
    [message] = list(response.wsgi_request._messages)
    assert message.level_tag == "error" and str(message).startswith("User 'grace' not created.")
    return str(message)


def test_a_taken_username_comes_back_as_an_error_message(
    keycloak: FakeKeycloak, staff: Client
) -> None:
    keycloak.add_user("grace")
    message = refusal(staff.post("/users/create/", with_csrf_token(staff)))
    assert "User exists with same username" in message
    assert usernames(keycloak).count("grace") == 1


def test_a_write_client_without_manage_users_is_told_which_role(
    keycloak: FakeKeycloak, staff: Client
) -> None:
    keycloak.client("django-provisioning").roles = READ_ROLES
    message = refusal(staff.post("/users/create/", with_csrf_token(staff)))
    assert "realm-management role 'manage-users'" in message
    assert "grace" not in usernames(keycloak)


def test_an_invalid_form_writes_nothing(keycloak: FakeKeycloak, staff: Client) -> None:
    data = {**with_csrf_token(staff), "username": " ", "email": "nope"}
    response = staff.post("/users/create/", data)
    [message] = list(response.wsgi_request._messages)  # type: ignore[attr-defined]
    assert "username: This field is required." in str(message)
    assert "email: Enter a valid email address." in str(message)
    assert usernames(keycloak) == []
