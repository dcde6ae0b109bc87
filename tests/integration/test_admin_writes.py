"""The Admin API writes against the real Keycloak, sync and async: one scenario (create, find,
update, password, groups, roles, delete) runs on both clients; Keycloak's refusals (409, 400,
403) map to their errors. Every user and group made here is deleted, also when a test fails."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from keycloak_jwt_auth import (
    AdminBadRequestError,
    AdminConflictError,
    AdminForbiddenError,
    AdminNotFoundError,
    AsyncKeycloakAdmin,
    KeycloakAdmin,
)
from keycloak_jwt_auth.admin import UserRepresentation

from .conftest import password_login

pytestmark = pytest.mark.keycloak

WRITER = "provisioning"  # django-provisioning: manage-users
READ_ONLY = "default"  # django-service: view-* roles only


class Awaited:
    """``KeycloakAdmin`` with every method as a coroutine, so that one scenario runs on both
    clients (each sync call runs as it is, on the loop's thread)."""

    def __init__(self, admin: KeycloakAdmin) -> None:
        self.admin = admin

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        method = getattr(self.admin, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call


Flavour = Callable[[str], Any]  # client name -> an admin whose methods are awaited
FLAVOURS: dict[str, Flavour] = {
    "sync": lambda client: Awaited(KeycloakAdmin(client)),
    "async": AsyncKeycloakAdmin,
}


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return FLAVOURS[request.param]


@dataclass
class Made:
    """What a test made in the realm: deleted at the end, whatever happened."""

    users: list[str] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)

    def delete_all(self) -> None:
        admin = KeycloakAdmin(WRITER)
        for delete, ids in ((admin.delete_user, self.users), (admin.delete_group, self.groups)):
            for id_ in ids:
                with contextlib.suppress(AdminNotFoundError):  # the test deleted it itself
                    delete(id_)


@pytest.fixture
def made(real_keycloak: str) -> Iterator[Made]:
    made = Made()
    try:
        yield made
    finally:
        made.delete_all()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def person(username: str) -> UserRepresentation:
    """A user who can log in: Keycloak creates users disabled unless told otherwise, and refuses
    a password login ("Account is not fully set up") while the user profile's required
    attributes (email, first and last name) are missing."""
    return {
        "username": username,
        "email": f"{username}@example.com",
        "firstName": "Test",
        "lastName": "Person",
        "enabled": True,
    }


async def lifecycle(admin: Any, made: Made, server_url: str) -> None:
    username = unique("it-user")
    user_id = await admin.create_user({**person(username), "firstName": "Ada"})
    made.users.append(user_id)

    found = await admin.find_user(username=username.upper())  # Keycloak keeps it lowercase
    assert found is not None and found["id"] == user_id
    assert (await admin.find_user(email=f"{username}@example.com"))["id"] == user_id
    assert await admin.find_user(username=f"{username}-nobody") is None
    assert await admin.find_user(username=username[:-1]) is None  # exact, not a search

    await admin.update_user(user_id, {"firstName": "Grace", "lastName": "Hopper"})
    user = await admin.user(user_id)
    assert (user["firstName"], user["lastName"], user["email"]) == (
        "Grace",
        "Hopper",
        f"{username}@example.com",  # a partial update keeps the rest
    )

    password = f"{uuid.uuid4().hex}-Aa1"
    await admin.set_password(user_id, password)
    login = password_login(server_url, username, password)
    assert login.status_code == 200, login.text
    assert login.json()["token_type"] == "Bearer"
    wrong = password_login(server_url, username, password + "x")
    # A wrong password is invalid_grant: Keycloak 26.7 answers it with 400, 26.4 with 401.
    assert (wrong.status_code in (400, 401), wrong.json()["error"]) == (True, "invalid_grant")

    group_id = await admin.create_group(unique("it-group"))
    made.groups.append(group_id)
    child_id = await admin.create_group("editors", parent_id=group_id)
    await admin.add_user_to_group(user_id, child_id)
    [membership] = await admin.user_groups(user_id)
    assert membership["id"] == child_id and membership["path"].endswith("/editors")
    assert (await admin.group_by_path(membership["path"]))["id"] == child_id
    await admin.remove_user_from_group(user_id, child_id)
    assert await admin.user_groups(user_id) == []

    await admin.assign_realm_roles(user_id, ["newsletter-editor", "billing-viewer"])
    names = {role["name"] for role in await admin.user_realm_roles(user_id)}
    assert {"newsletter-editor", "billing-viewer"} <= names
    await admin.remove_realm_roles(user_id, ["billing-viewer"])
    names = {role["name"] for role in await admin.user_realm_roles(user_id)}
    assert "newsletter-editor" in names and "billing-viewer" not in names

    await admin.delete_group(group_id)  # its subgroup goes with it
    assert not [g for g in await admin.groups() if g["id"] == group_id]
    await admin.delete_user(user_id)
    assert await admin.find_user(username=username) is None
    with pytest.raises(AdminNotFoundError):
        await admin.user(user_id)


@pytest.mark.contract
def test_every_write_sync_and_async(flavour: Flavour, made: Made, real_keycloak: str) -> None:
    asyncio.run(lifecycle(flavour(WRITER), made, real_keycloak))
    assert KeycloakAdmin().users_count() == 30  # the realm is as it was


def test_a_duplicate_username_is_a_conflict(flavour: Flavour, made: Made) -> None:
    async def scenario() -> None:
        admin = flavour(WRITER)
        username = unique("it-dup")
        made.users.append(await admin.create_user({"username": username}))
        with pytest.raises(AdminConflictError, match="User exists with same username") as info:
            await admin.create_user({"username": username, "email": f"{username}@example.com"})
        assert info.value.status == 409 and info.value.method == "POST"

    asyncio.run(scenario())


def test_the_password_policy_is_a_bad_request(
    flavour: Flavour, made: Made, real_keycloak: str
) -> None:
    async def scenario() -> None:
        admin = flavour(WRITER)
        username = unique("it-policy")
        made.users.append(user_id := await admin.create_user(person(username)))
        with pytest.raises(AdminBadRequestError) as info:
            await admin.set_password(user_id, "too-short")
        assert info.value.error_message == "Invalid password: minimum length 12."
        assert "too-short" not in str(info.value)
        with pytest.raises(AdminBadRequestError, match="must not be equal to the username"):
            await admin.set_password(user_id, username)
        assert password_login(real_keycloak, username, "too-short").status_code == 400

    asyncio.run(scenario())


def test_field_errors_of_a_bad_representation(flavour: Flavour, made: Made) -> None:
    async def scenario() -> None:
        with pytest.raises(AdminBadRequestError) as info:
            await flavour(WRITER).create_user({"username": unique("it-bad"), "email": "nope"})
        [error] = info.value.field_errors
        assert (error.field, error.message) == ("email", "error-invalid-email")

    asyncio.run(scenario())


@pytest.mark.contract
def test_the_read_only_client_gets_403_naming_manage_users(flavour: Flavour, made: Made) -> None:
    async def scenario() -> None:
        username = unique("it-ro")
        with pytest.raises(AdminForbiddenError, match="realm-management role 'manage-users'"):
            await flavour(READ_ONLY).create_user({"username": username})
        assert await flavour(WRITER).find_user(username=username) is None

    asyncio.run(scenario())


def test_unknown_role_names_write_nothing(flavour: Flavour, made: Made) -> None:
    async def scenario() -> None:
        admin = flavour(WRITER)
        made.users.append(user_id := await admin.create_user({"username": unique("it-roles")}))
        with pytest.raises(ValueError, match="Unknown realm roles: 'no-such-role'"):
            await admin.assign_realm_roles(user_id, ["newsletter-editor", "no-such-role"])
        names = {role["name"] for role in await admin.user_realm_roles(user_id)}
        assert "newsletter-editor" not in names

    asyncio.run(scenario())


def test_only_the_test_client_takes_passwords(made: Made, real_keycloak: str) -> None:
    admin = KeycloakAdmin(WRITER)
    username = unique("it-grant")
    made.users.append(user_id := admin.create_user(person(username)))
    admin.set_password(user_id, password := f"{uuid.uuid4().hex}-Aa1")
    refused = requests.post(
        f"{real_keycloak}/realms/demo/protocol/openid-connect/token",
        data={"grant_type": "password", "client_id": "admin-cli", "username": username,
              "password": password},
        timeout=30,
    )  # fmt: skip
    assert refused.status_code == 400 and refused.json()["error"] == "unauthorized_client"
    assert password_login(real_keycloak, username, password).status_code == 200
