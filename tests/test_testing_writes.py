"""FakeKeycloak's Admin API writes, through KeycloakAdmin and AsyncKeycloakAdmin: each write does
what Keycloak 26.7 does to the realm, its refusals (400, 403, 404, 409) come in Keycloak's words
and map to the library's errors, every write is counted, and no password is kept or shown."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from keycloak_jwt_auth import (
    AdminBadRequestError,
    AdminConflictError,
    AdminForbiddenError,
    AdminNotFoundError,
    AsyncKeycloakAdmin,
    KeycloakAdmin,
)
from keycloak_jwt_auth.testing import READ_ROLES, FakeKeycloak

WRITER = "provisioning"  # a named client whose service account has manage-users
PASSWORD = "correct-horse-battery-staple"
USERS = "/admin/realms/demo/users"
GROUPS = "/admin/realms/demo/groups"

Scenario = Callable[[Any], Coroutine[Any, Any, None]]  # given an admin whose calls are awaited


@pytest.fixture
def kc(fake_keycloak: FakeKeycloak, settings: Any) -> FakeKeycloak:
    """The fake with the read-only default client and the writer ``provisioning``."""
    writer = fake_keycloak.add_client(
        "django-provisioning",
        secret=secrets.token_urlsafe(32),
        roles=(*READ_ROLES, "manage-users"),
    )
    settings.KEYCLOAK_JWT_AUTH = {
        **fake_keycloak.settings(),
        "CLIENTS": {WRITER: fake_keycloak.settings(writer.client_id)},
    }
    return fake_keycloak


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., None]:
    """Runs a scenario in one event loop on the async client, or on the sync one (its methods
    wrapped in coroutines), as ``client`` (default: the writer)."""

    def run(scenario: Scenario, client: str = WRITER) -> None:
        async def main() -> None:
            if request.param == "async":
                await scenario(AsyncKeycloakAdmin(client))
            else:
                await scenario(Awaited(KeycloakAdmin(client)))

        asyncio.run(main())

    return run


class Awaited:
    def __init__(self, admin: KeycloakAdmin) -> None:
        self.admin = admin

    def __getattr__(self, name: str) -> Callable[..., Coroutine[Any, Any, Any]]:
        async def call(*args: Any, **kwargs: Any) -> Any:
            return getattr(self.admin, name)(*args, **kwargs)

        return call


def writes(kc: FakeKeycloak) -> list[tuple[str, str]]:
    """The Admin API requests received that are not reads."""
    return [(m, path) for m, path in kc.received if m != "GET" and path.startswith("/admin/")]


# --- what each write does to the realm ---------------------------------------------------------


def test_every_write_sync_and_async(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    kc.add_role("newsletter-editor")
    kc.add_role("billing-viewer")
    ids: dict[str, str] = {}

    async def scenario(admin: Any) -> None:
        user_id = ids["user"] = await admin.create_user(
            {"username": "Ada", "email": "Ada@Example.com", "firstName": "Ada"}
        )
        user = await admin.user(user_id)
        assert (user["username"], user["email"], user["enabled"]) == (
            "ada",  # Keycloak keeps usernames and emails lowercase
            "ada@example.com",
            False,  # a user created without "enabled": true is disabled
        )
        assert (await admin.find_user(username="ADA"))["id"] == user_id
        assert (await admin.find_user(email="ada@example.com"))["id"] == user_id
        assert await admin.find_user(username="ad") is None  # exact, not a search

        await admin.update_user(user_id, {"lastName": "Lovelace", "enabled": True})
        user = await admin.user(user_id)
        assert (user["firstName"], user["lastName"], user["enabled"]) == ("Ada", "Lovelace", True)

        await admin.set_password(user_id, PASSWORD, temporary=True)
        assert kc.check_password(user_id, PASSWORD) and not kc.check_password(user_id, "x")
        assert (await admin.user(user_id))["requiredActions"] == ["UPDATE_PASSWORD"]
        await admin.set_password(user_id, PASSWORD + "!")
        assert kc.check_password(user_id, PASSWORD + "!")
        assert (await admin.user(user_id))["requiredActions"] == []

        staff = ids["staff"] = await admin.create_group("staff")
        editors = ids["editors"] = await admin.create_group("editors", parent_id=staff)
        await admin.add_user_to_group(user_id, editors)
        await admin.add_user_to_group(user_id, editors)  # once is enough
        [membership] = await admin.user_groups(user_id)
        assert (membership["id"], membership["path"]) == (editors, "/staff/editors")
        assert (await admin.group_by_path("/staff/editors"))["id"] == editors
        assert (await admin.group_by_path("staff"))["subGroupCount"] == 1
        assert [g["name"] for g in await admin.groups()] == ["staff"]  # top-level groups only
        await admin.remove_user_from_group(user_id, editors)
        assert await admin.user_groups(user_id) == []

        await admin.assign_realm_roles(user_id, ["newsletter-editor", "billing-viewer"])
        names = {role["name"] for role in await admin.user_realm_roles(user_id)}
        assert names == {"default-roles-demo", "newsletter-editor", "billing-viewer"}
        await admin.remove_realm_roles(user_id, ["billing-viewer"])
        names = {role["name"] for role in await admin.user_realm_roles(user_id)}
        assert names == {"default-roles-demo", "newsletter-editor"}

        await admin.delete_group(staff)  # its subgroup goes with it
        assert await admin.groups() == [] and kc.groups == []
        await admin.delete_user(user_id)
        assert await admin.find_user(username="ada") is None
        with pytest.raises(AdminNotFoundError):
            await admin.user(user_id)

    run(scenario)
    user, staff, editors = ids["user"], ids["staff"], ids["editors"]
    assert writes(kc) == [  # every write counted in .received, like the reads
        ("POST", USERS),
        ("PUT", f"{USERS}/{user}"),
        *[("PUT", f"{USERS}/{user}/reset-password")] * 2,
        ("POST", GROUPS),
        ("POST", f"{GROUPS}/{staff}/children"),
        *[("PUT", f"{USERS}/{user}/groups/{editors}")] * 2,
        ("DELETE", f"{USERS}/{user}/groups/{editors}"),
        ("POST", f"{USERS}/{user}/role-mappings/realm"),
        ("DELETE", f"{USERS}/{user}/role-mappings/realm"),
        ("DELETE", f"{GROUPS}/{staff}"),
        ("DELETE", f"{USERS}/{user}"),
    ]
    assert kc.users == [] and kc.role_mappings == {} and kc.passwords == {}


def test_creates_answer_201_with_location_and_writes_204(kc: FakeKeycloak) -> None:
    session = KeycloakAdmin(WRITER).session
    created = session.post(f"{kc.admin_url}/users", json={"username": "ada"}, timeout=5)
    user_id = created.headers["Location"].rpartition("/")[2]
    assert created.status_code == 201 and created.content == b""
    assert created.headers["Location"] == f"{kc.admin_url}/users/{user_id}"
    updated = session.put(f"{kc.admin_url}/users/{user_id}", json={"firstName": "A"}, timeout=5)
    assert (updated.status_code, updated.content) == (204, b"")
    GROUPS_URL = f"{kc.admin_url}/groups"
    group = session.post(GROUPS_URL, json={"name": "staff"}, timeout=5)
    assert group.status_code == 201 and group.content == b""
    group_id = group.headers["Location"].rpartition("/")[2]
    child = session.post(f"{GROUPS_URL}/{group_id}/children", json={"name": "x"}, timeout=5)
    assert child.status_code == 201  # this create answers its group too (as measured)
    assert child.headers["Location"] == f"{kc.admin_url}/groups/{child.json()['id']}"
    assert (child.json()["path"], child.json()["parentId"]) == ("/staff/x", group_id)


# --- Keycloak's refusals, mapped to the library's errors ---------------------------------------


def test_duplicates_are_conflicts(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    kc.add_user("ada", email="ada@example.com")
    grace = kc.add_user("grace", email="grace@example.com")

    async def scenario(admin: Any) -> None:
        for representation, words in [
            ({"username": "ADA"}, "User exists with same username"),
            ({"username": "lovelace", "email": "Ada@example.com"}, "User exists with same email"),
        ]:
            with pytest.raises(AdminConflictError) as info:
                await admin.create_user(representation)
            assert info.value.error_message == words and info.value.method == "POST"
        with pytest.raises(AdminConflictError, match="User exists with same email"):
            await admin.update_user(grace["id"], {"email": "ada@example.com"})
        await admin.update_user(grace["id"], {"email": "grace@example.com"})  # its own: fine

        staff = await admin.create_group("staff")
        with pytest.raises(AdminConflictError) as info:
            await admin.create_group("staff")
        assert info.value.error_message == "Top level group named 'staff' already exists."
        await admin.create_group("staff", parent_id=staff)  # unique among its siblings
        with pytest.raises(AdminConflictError) as info:
            await admin.create_group("staff", parent_id=staff)
        assert info.value.error_message == "Sibling group named 'staff' already exists."
        await admin.delete_group(staff)

    run(scenario)
    assert [u["username"] for u in kc.users] == ["ada", "grace"]


def test_bad_requests_name_keycloaks_words_and_fields(
    kc: FakeKeycloak, run: Callable[..., None]
) -> None:
    kc.password_min_length = 12
    ada = kc.add_user("ada")

    async def scenario(admin: Any) -> None:
        with pytest.raises(AdminBadRequestError) as info:
            await admin.set_password(ada["id"], "too-short")
        assert info.value.body == {
            "error": "invalidPasswordMinLengthMessage",
            "error_description": "Invalid password: minimum length 12.",
        }
        assert info.value.error_message == "Invalid password: minimum length 12."
        assert "too-short" not in str(info.value)

        with pytest.raises(AdminBadRequestError) as info:
            await admin.create_user({"username": "grace", "email": "nope"})
        [error] = info.value.field_errors
        assert (error.field, error.message, error.params) == (
            "email",
            "error-invalid-email",
            ["email", "nope"],
        )
        with pytest.raises(AdminBadRequestError, match="email: error-invalid-email"):
            await admin.update_user(ada["id"], {"email": "still nope"})

        credentials = [{"type": "password", "value": "too-short", "temporary": False}]
        with pytest.raises(AdminBadRequestError) as info:
            await admin.create_user({"username": "grace", "credentials": credentials})
        assert info.value.error_message == "Password policy not met"
        assert await admin.find_user(username="grace") is None  # nothing created

        credentials = [{"type": "password", "value": PASSWORD, "temporary": True}]
        grace = await admin.create_user({"username": "grace", "credentials": credentials})
        assert kc.passwords[grace].temporary and kc.check_password(grace, PASSWORD)

    run(scenario)
    assert not kc.check_password(ada["id"], "too-short") and "email" not in ada


def test_writes_need_manage_users(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    ada = kc.add_user("ada")
    kc.add_group("staff")
    kc.add_role("newsletter-editor")

    async def scenario(admin: Any) -> None:  # the default client: read roles only
        [staff] = await admin.groups()
        for write in (
            admin.create_user({"username": "grace"}),
            admin.set_password(ada["id"], PASSWORD),
            admin.create_group("editors"),
            admin.add_user_to_group(ada["id"], staff["id"]),
            admin.assign_realm_roles(ada["id"], ["newsletter-editor"]),
            admin.delete_user(ada["id"]),
        ):
            with pytest.raises(AdminForbiddenError, match="realm-management role 'manage-users'"):
                await write
        assert [r["name"] for r in await admin.user_realm_roles(ada["id"])] == [
            "default-roles-demo"
        ]

    run(scenario, "default")
    assert [u["username"] for u in kc.users] == ["ada"] and len(kc.groups) == 1
    assert kc.passwords == {} and kc.groups[0]["members"] == []


def test_unknown_ids_are_not_found(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    ada = kc.add_user("ada")

    async def scenario(admin: Any) -> None:
        for call, error in [
            (admin.update_user("nobody", {"firstName": "X"}), "User not found"),
            (admin.delete_user("nobody"), "User not found"),
            (admin.set_password("nobody", PASSWORD), "User not found"),
            (admin.user_groups("nobody"), "User not found"),
            (admin.add_user_to_group(ada["id"], "no-group"), "Group not found"),
            (admin.remove_user_from_group(ada["id"], "no-group"), "Group not found"),
            (admin.create_group("x", parent_id="no-group"), "Could not find group by id"),
            (admin.delete_group("no-group"), "Could not find group by id"),
            (admin.group_by_path("/staff/nobody"), "Group path does not exist"),
            (admin.user_realm_roles("nobody"), "User not found"),
        ]:
            with pytest.raises(AdminNotFoundError) as info:
                await call
            assert info.value.body == {"error": error}

    run(scenario)


UNNAMED = {"errorMessage": "User name is missing"}
UNPARSED = {"error": "invalid_request", "error_description": "Cannot parse the JSON"}


@pytest.mark.parametrize(
    ("method", "path", "sent", "status", "body"),
    [
        ("POST", "users", {"data": b"{not json"}, 400, UNPARSED),
        ("POST", "users", {"json": ["ada"]}, 400, UNPARSED),  # not a user representation
        ("POST", "users", {"json": {"email": "a@b.c"}}, 400, UNNAMED),
        ("PUT", "users/ADA", {"json": {"username": " "}}, 400, UNNAMED),
        ("PUT", "users/ADA/reset-password", {"json": {"type": "password"}}, 400,
         {"error": "No password provided"}),
        ("PUT", "users/ADA/reset-password", {"json": {"type": "password", "value": " "}}, 400,
         {"error": "Empty password not allowed"}),
        ("POST", "groups", {"json": {"name": ""}}, 400,
         {"errorMessage": "Group name is missing"}),
        ("POST", "users/ADA/role-mappings/realm", {"json": [{"name": "editor", "id": "other"}]},
         404, {"error": "Role not found"}),  # Keycloak checks the id as well as the name
    ],
)  # fmt: skip
def test_request_corners_in_keycloaks_words(
    kc: FakeKeycloak, method: str, path: str, sent: dict[str, Any], status: int, body: Any
) -> None:
    ada = kc.add_user("ada")
    kc.add_role("editor")
    url = f"{kc.admin_url}/{path.replace('ADA', ada['id'])}"
    answer = KeycloakAdmin(WRITER).session.request(method, url, timeout=5, **sent)
    assert (answer.status_code, answer.json()) == (status, body)
    assert kc.users == [ada] and kc.groups == []
    assert ada.get("firstName") is None and kc.role_mappings[ada["id"]] == ["default-roles-demo"]


def test_manage_users_alone_reads_users_and_groups(kc: FakeKeycloak, settings: Any) -> None:
    kc.add_client("writer-only", secret="w" * 40, roles=("manage-users",))
    settings.KEYCLOAK_JWT_AUTH = {**kc.settings(), "CLIENTS": {"w": kc.settings("writer-only")}}
    admin = KeycloakAdmin("w")
    user_id = admin.create_user({"username": "ada"})
    group_id = admin.create_group("staff")
    admin.add_user_to_group(user_id, group_id)
    assert admin.find_user(username="ada") is not None  # view-users comes with manage-users
    assert [g["name"] for g in admin.groups()] == ["staff"]  # ... and so does query-groups
    with pytest.raises(AdminForbiddenError, match="'view-realm'"):
        admin.realm()
    admin.delete_user(user_id)
    assert kc.groups[0]["members"] == []  # a deleted user leaves its groups


# --- no password kept or shown -----------------------------------------------------------------


def test_no_password_in_the_fakes_state_repr_or_output(
    kc: FakeKeycloak, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = KeycloakAdmin(WRITER)
    first, second, weak = PASSWORD, "second-Passw0rd-of-the-day-ok", "a-weak-one"
    ada = admin.create_user(
        {"username": "ada", "credentials": [{"type": "password", "value": first}]}
    )
    kc.password_min_length = 12
    with pytest.raises(AdminBadRequestError) as refused:
        admin.set_password(ada, weak)
    kc.password_min_length = None
    admin.set_password(ada, second, temporary=True)
    assert kc.check_password(ada, second) and not kc.check_password(ada, first)
    state = repr(vars(kc)) + repr(kc) + repr(kc.passwords[ada]) + str(refused.value)
    out, err = capfd.readouterr()
    for password in (first, second, weak):
        assert password not in state + caplog.text + out + err
    assert repr(kc.passwords[ada]) == "StoredPassword(temporary=True)"
