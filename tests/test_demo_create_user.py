"""The demo page's "create user" form: staff only (the demo views' rule), POST with a CSRF
token, an Admin API write with the write client, and back to the page with a message."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client, override_settings

from .conftest import LOOPBACK_TOKEN_PATH
from .loopback import Answer, Loopback

pytestmark = pytest.mark.django_db

USERS = "/admin/realms/demo/users"
CSRF_SECRET = "a" * 32  # Django's CSRF secrets are 32 letters and digits
NEW_USER = {"username": "grace", "email": "grace@example.com", "first_name": "Grace"}


@pytest.fixture
def keycloak(loopback_keycloak: Loopback) -> Iterator[Loopback]:
    server = loopback_keycloak
    server.route(USERS, Answer(201, b"", {"Location": f"{server.url}{USERS}/u-7"}))
    writer = {"CLIENT_ID": "django-provisioning", "CLIENT_SECRET": "w" * 40}
    conf = {**settings.KEYCLOAK_JWT_AUTH, "CLIENTS": {"writer": writer}}
    with override_settings(KEYCLOAK_JWT_AUTH=conf, KEYCLOAK_JWT_AUTH_DEMO_WRITE_CLIENT="writer"):
        yield server


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


def posted(server: Loopback) -> list[dict[str, object]]:
    return [json.loads(r.body) for r in server.received if r.method == "POST" and r.path == USERS]


def test_staff_create_a_user_and_see_it(keycloak: Loopback, staff: Client) -> None:
    response = staff.post("/users/create/", with_csrf_token(staff))
    assert (response.status_code, response["Location"]) == (302, "/?search=grace")
    assert posted(keycloak) == [
        {"username": "grace", "enabled": True, "email": "grace@example.com", "firstName": "Grace"}
    ]
    token_form = next(r for r in keycloak.received if r.path == LOOPBACK_TOKEN_PATH).body.decode()
    assert "client_id=django-provisioning" in token_form  # the write client, not the default
    [message] = list(response.wsgi_request._messages)  # type: ignore[attr-defined]
    assert (message.level_tag, str(message)) == ("success", "Created user 'grace'.")


def test_without_a_csrf_token_nothing_is_written(keycloak: Loopback, staff: Client) -> None:
    assert staff.post("/users/create/", NEW_USER).status_code == 403
    assert posted(keycloak) == []


def test_get_is_not_allowed_and_anonymous_users_are_sent_to_log_in(keycloak: Loopback) -> None:
    client = Client()
    assert client.get("/users/create/").status_code == 405
    response = client.post("/users/create/", NEW_USER)
    assert response.status_code == 302 and "login" in response["Location"]
    client.force_login(User.objects.create_user("plain", password="pw"))
    assert client.post("/users/create/", NEW_USER).status_code == 403
    assert posted(keycloak) == []


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(409, b'{"errorMessage": "User exists with same username"}'),
         "User exists with same username"),
        (Answer(403, b'{"error": "HTTP 403 Forbidden"}'), "realm-management role 'manage-users'"),
    ],
)  # fmt: skip
def test_a_refusal_comes_back_as_an_error_message(
    keycloak: Loopback, staff: Client, answer: Answer, words: str
) -> None:
    keycloak.route(USERS, answer)
    response = staff.post("/users/create/", with_csrf_token(staff), follow=False)
    assert (response.status_code, response["Location"]) == (302, "/")
    [message] = list(response.wsgi_request._messages)  # type: ignore[attr-defined]
    assert message.level_tag == "error" and words in str(message)
    assert str(message).startswith("User 'grace' not created.")


def test_an_invalid_form_writes_nothing(keycloak: Loopback, staff: Client) -> None:
    data = {**with_csrf_token(staff), "username": " ", "email": "nope"}
    response = staff.post("/users/create/", data)
    [message] = list(response.wsgi_request._messages)  # type: ignore[attr-defined]
    assert "username: This field is required." in str(message)
    assert "email: Enter a valid email address." in str(message)
    assert posted(keycloak) == []
