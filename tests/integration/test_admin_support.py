"""Client roles, organizations, sessions, required-action e-mails and ``request()`` against the
real Keycloak 26.7, sync and async: each scenario runs on both clients; the 403s name the role,
409s and the SMTP-less realm map to their errors. What a test makes it also removes."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import uuid
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import pytest
import requests

from keycloak_jwt_auth import AdminConflictError, AdminForbiddenError, AdminNotFoundError
from keycloak_jwt_auth.admin import KeycloakAdmin
from keycloak_jwt_auth.exceptions import AdminBadRequestError, AdminEmailNotConfiguredError
from support.realm import realm_secrets

from .conftest import client_settings, password_login
from .test_admin_writes import FLAVOURS, Flavour

pytestmark = pytest.mark.keycloak

SUPPORT = "support"  # django-support: manage-users, view-clients, the organization roles
PORTAL = "demo-portal"  # a client with the client roles viewer and editor
PASSWORD = "a-long-enough-password-1"


def runs_on_a_loop(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """The async scenario as a test (each flavour's calls awaited on one loop)."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


@pytest.fixture(params=sorted(FLAVOURS))
def flavour(request: pytest.FixtureRequest) -> Flavour:
    return FLAVOURS[request.param]


@pytest.fixture
def support_keycloak(keycloak_server: str, settings: Any) -> Iterator[KeycloakAdmin]:
    base = client_settings(keycloak_server)
    support = {"CLIENT_ID": "django-support", "CLIENT_SECRET": realm_secrets()["django-support"]}
    settings.KEYCLOAK_JWT_AUTH = {**base, "CLIENTS": {**base["CLIENTS"], SUPPORT: support}}
    yield KeycloakAdmin(SUPPORT)


@pytest.fixture
def user_id(support_keycloak: KeycloakAdmin) -> Iterator[str]:
    """A fresh user with an e-mail address and a password; deleted afterwards."""
    name = f"support-{uuid.uuid4().hex[:8]}"
    created = support_keycloak.create_user(
        {"username": name, "email": f"{name}@example.com", "enabled": True,
         "firstName": "Sup", "lastName": "Port"}  # a complete profile: password logins work
    )  # fmt: skip
    support_keycloak.set_password(created, PASSWORD)
    yield created
    with contextlib.suppress(AdminNotFoundError):
        support_keycloak.delete_user(created)


@runs_on_a_loop
async def test_client_roles_by_public_client_id(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    admin = flavour(SUPPORT)
    assert sorted(r["name"] for r in await admin.client_roles(PORTAL)) == ["editor", "viewer"]
    assert await admin.user_client_roles(user_id, PORTAL) == []
    await admin.assign_client_roles(user_id, PORTAL, ["editor", "viewer"])
    granted = await admin.user_client_roles(user_id, PORTAL)
    assert sorted(r["name"] for r in granted) == ["editor", "viewer"]
    await admin.remove_client_roles(user_id, PORTAL, ["editor"])
    assert [r["name"] for r in await admin.user_client_roles(user_id, PORTAL)] == ["viewer"]
    with pytest.raises(ValueError, match="'boss'"):  # nothing written: viewer stays alone
        await admin.assign_client_roles(user_id, PORTAL, ["editor", "boss"])
    assert [r["name"] for r in await admin.user_client_roles(user_id, PORTAL)] == ["viewer"]
    with pytest.raises(AdminNotFoundError, match="no client with clientId 'no-such-app'"):
        await admin.client_roles("no-such-app")


@runs_on_a_loop
async def test_find_client_never_hands_out_the_secret(
    flavour: Flavour, support_keycloak: KeycloakAdmin
) -> None:
    admin = flavour(SUPPORT)
    client = await admin.find_client(PORTAL)
    assert client["clientId"] == PORTAL and client["id"]
    assert "secret" not in client
    assert realm_secrets()[PORTAL] not in repr(client)
    assert await admin.find_client("demo-port") is None  # clientId is an exact match
    raw = await admin.request("GET", "clients", params={"clientId": PORTAL})
    assert raw[0]["secret"] == realm_secrets()[PORTAL]  # what find_client keeps away


@runs_on_a_loop
async def test_client_role_reads_and_writes_need_their_roles(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    with pytest.raises(AdminForbiddenError, match="'view-clients'"):
        await flavour("provisioning").client_roles(PORTAL)  # manage-users, no view-clients
    with pytest.raises(AdminForbiddenError, match="'manage-users'"):
        await flavour("default").assign_client_roles(user_id, PORTAL, ["viewer"])


@runs_on_a_loop
async def test_organizations_create_members_delete(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    admin = flavour(SUPPORT)
    name = f"Org {uuid.uuid4().hex[:8]}"
    alias = name.lower().replace(" ", "-")
    org_id = await admin.create_organization({"name": name, "alias": alias})
    try:
        [found] = await admin.organizations(search=name)
        assert (found["id"], found["alias"]) == (org_id, alias)
        with pytest.raises(AdminConflictError, match="same name already exists"):
            await admin.create_organization({"name": name, "alias": f"{alias}-2"})
        with pytest.raises(AdminBadRequestError, match="Empty Space not allowed"):
            await admin.create_organization({"name": f"{name} again"})  # spaces, no alias
        await admin.add_organization_member(org_id, user_id)
        with pytest.raises(AdminConflictError, match="already a member"):
            await admin.add_organization_member(org_id, user_id)
        assert [m["id"] for m in await admin.organization_members(org_id)] == [user_id]
        assert [o["id"] for o in await admin.user_organizations(user_id)] == [org_id]
        await admin.remove_organization_member(org_id, user_id)
        assert await admin.organization_members(org_id) == []
    finally:
        await admin.delete_organization(org_id)
    with pytest.raises(AdminNotFoundError, match="Organization not found"):
        await admin.delete_organization(org_id)


@runs_on_a_loop
async def test_organizations_need_the_organization_roles(
    flavour: Flavour, support_keycloak: KeycloakAdmin
) -> None:
    with pytest.raises(AdminForbiddenError, match="'query-organizations'"):
        await flavour("provisioning").organizations()
    with pytest.raises(AdminForbiddenError, match="'manage-organizations'"):
        await flavour("default").create_organization({"name": "nope", "alias": "nope"})
    [acme] = await flavour("default").organizations(search="Acme")  # the demo organization
    members = await flavour("default").organization_members(acme["id"])
    assert [m["username"] for m in members] == ["ada.lovelace"]


@runs_on_a_loop
async def test_sessions_and_logout(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    admin = flavour(SUPPORT)
    username = support_keycloak.user(user_id)["username"]
    login = password_login(support_keycloak.config.server_url, username, PASSWORD).json()
    assert "refresh_token" in login, login
    [session] = await admin.user_sessions(user_id)
    assert session["userId"] == user_id and session["id"]
    with pytest.raises(AdminForbiddenError, match="'manage-users'"):
        await flavour("default").logout_user(user_id)
    await admin.logout_user(user_id)
    assert await admin.user_sessions(user_id) == []
    refreshed = requests.post(
        f"{support_keycloak.config.server_url}/realms/demo/protocol/openid-connect/token",
        data={
            "grant_type": "refresh_token",
            "client_id": "demo-password-login",
            "refresh_token": login["refresh_token"],
        },  # fmt: skip
        timeout=10,
    )
    assert (refreshed.status_code, refreshed.json()["error_description"]) == (
        400,
        "Session not active",
    )


@runs_on_a_loop
async def test_execute_actions_email_says_smtp_is_missing(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    admin = flavour(SUPPORT)
    with pytest.raises(AdminEmailNotConfiguredError, match="no SMTP server") as raised:
        await admin.execute_actions_email(
            user_id, ["VERIFY_EMAIL", "UPDATE_PASSWORD"], lifespan=600
        )
    assert raised.value.status == 500 and "Realm settings > Email" in str(raised.value)
    with pytest.raises(AdminBadRequestError, match="Provided invalid required actions"):
        await admin.execute_actions_email(user_id, ["NOT_AN_ACTION"])
    with pytest.raises(AdminForbiddenError, match="'manage-users'"):
        await flavour("default").execute_actions_email(user_id, ["VERIFY_EMAIL"])


@runs_on_a_loop
async def test_request_has_the_typed_calls_rules(
    flavour: Flavour, support_keycloak: KeycloakAdmin, user_id: str
) -> None:
    admin = flavour(SUPPORT)
    assert (await admin.request("GET", f"users/{user_id}"))["id"] == user_id
    assert await admin.request("GET", "users/count") >= 1
    name = f"group-{uuid.uuid4().hex[:8]}"
    group_id = await admin.request("POST", "/groups/", json={"name": name})  # the new id
    assert (await admin.request("GET", f"groups/{group_id}"))["name"] == name
    with pytest.raises(AdminConflictError):
        await admin.request("POST", "groups", json={"name": name})
    assert await admin.request("DELETE", f"groups/{group_id}") is None
    with pytest.raises(AdminForbiddenError, match="'manage-users'"):
        await flavour("default").request("PUT", f"users/{user_id}", json={"firstName": "X"})
    for escaping in ("../master/users", "users/%2e%2e/%2e%2e/master", "users%2F..%2Fx", "a//b"):
        with pytest.raises(ValueError, match="leaves the realm"):
            await admin.request("GET", escaping)
