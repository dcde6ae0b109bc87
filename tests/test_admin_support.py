"""Client roles, organizations, sessions, required-action e-mails and ``request()`` through both
clients against FakeKeycloak (the real Keycloak: integration), the path rules of ``request()``
without any server, and the ``keycloak_user`` actions that use them."""

from __future__ import annotations

import asyncio
import io
import json
import secrets
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from keycloak_jwt_auth import AdminConflictError, AdminForbiddenError, AdminNotFoundError
from keycloak_jwt_auth.admin import AsyncKeycloakAdmin, KeycloakAdmin
from keycloak_jwt_auth.admin.support_calls import request
from keycloak_jwt_auth.exceptions import AdminEmailNotConfiguredError
from keycloak_jwt_auth.testing import READ_ROLES, FakeKeycloak

from .test_testing_writes import Awaited

SUPPORT = "support"
SUPPORT_ROLES = (*READ_ROLES, "manage-users", "manage-organizations")
PORTAL_SECRET = "portal-secret-" + "x" * 30


@pytest.fixture
def kc(fake_keycloak: FakeKeycloak, settings: Any) -> FakeKeycloak:
    """The fake with a support client, the client demo-portal (roles viewer, editor), the user
    ada (with an e-mail) and the organization Acme with ada in it."""
    support = fake_keycloak.add_client(
        "django-support", secret=secrets.token_urlsafe(32), roles=SUPPORT_ROLES
    )
    settings.KEYCLOAK_JWT_AUTH = {
        **fake_keycloak.settings(),
        "CLIENTS": {SUPPORT: fake_keycloak.settings(support.client_id)},
    }
    fake_keycloak.add_client("demo-portal", secret=PORTAL_SECRET, service_accounts=False)
    for role in ("viewer", "editor"):
        fake_keycloak.add_client_role("demo-portal", role)
    ada = fake_keycloak.add_user("ada", email="ada@example.com")
    fake_keycloak.add_organization("Acme", alias="acme", members=[ada])
    return fake_keycloak


Scenario = Callable[[Any], Coroutine[Any, Any, None]]


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[..., None]:
    def run(scenario: Scenario, client: str = SUPPORT) -> None:
        async def main() -> None:
            sync = Awaited(KeycloakAdmin(client))
            await scenario(AsyncKeycloakAdmin(client) if request.param == "async" else sync)

        asyncio.run(main())

    return run


def ada_id(kc: FakeKeycloak) -> str:
    return str(next(u["id"] for u in kc.users if u["username"] == "ada"))


def test_client_roles_by_public_client_id(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    async def scenario(admin: Any) -> None:
        user = ada_id(kc)
        assert sorted(r["name"] for r in await admin.client_roles("demo-portal")) == [
            "editor",
            "viewer",
        ]
        await admin.assign_client_roles(user, "demo-portal", ["editor"])
        assert [r["name"] for r in await admin.user_client_roles(user, "demo-portal")] == ["editor"]
        with pytest.raises(ValueError, match="'boss'.*it has 'editor', 'viewer'"):
            await admin.assign_client_roles(user, "demo-portal", ["viewer", "boss"])
        await admin.remove_client_roles(user, "demo-portal", ["editor"])
        assert await admin.user_client_roles(user, "demo-portal") == []
        with pytest.raises(AdminNotFoundError, match="no client with clientId 'nope'"):
            await admin.user_client_roles(user, "nope")

    run(scenario)
    kinds = [(m, p.rsplit("/", 1)[-1]) for m, p in kc.received if "role-mappings" in p]
    assert ("POST", kc.client("demo-portal").id) in kinds


def test_find_client_drops_the_secret(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    async def scenario(admin: Any) -> None:
        found = await admin.find_client("demo-portal")
        assert found["id"] == kc.client("demo-portal").id and "secret" not in found
        assert PORTAL_SECRET not in repr(found)
        assert await admin.find_client("demo-porta") is None

    run(scenario)


def test_organizations_and_their_members(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    async def scenario(admin: Any) -> None:
        user = ada_id(kc)
        [acme] = await admin.organizations(search="acm")
        assert [m["username"] for m in await admin.organization_members(acme["id"])] == ["ada"]
        new = await admin.create_organization({"name": "Globex", "alias": "globex"})
        with pytest.raises(AdminConflictError, match="same name"):
            await admin.create_organization({"name": "Globex", "alias": "globex-2"})
        await admin.add_organization_member(new, user)
        assert sorted(o["alias"] for o in await admin.user_organizations(user)) == [
            "acme",
            "globex",
        ]
        await admin.remove_organization_member(new, user)
        await admin.delete_organization(new)
        assert [o["alias"] for o in await admin.organizations()] == ["acme"]

    run(scenario)


def test_the_organization_roles(kc: FakeKeycloak, run: Callable[..., None]) -> None:
    async def scenario(admin: Any) -> None:
        with pytest.raises(AdminForbiddenError, match="'query-organizations'"):
            await admin.organizations()
        with pytest.raises(AdminForbiddenError, match="'manage-organizations'"):
            await admin.create_organization({"name": "x"})

    run(scenario, client="default")


def test_sessions_logout_and_the_smtp_less_realm(
    kc: FakeKeycloak, run: Callable[..., None]
) -> None:
    async def scenario(admin: Any) -> None:
        user = ada_id(kc)
        kc.smtp = None
        session = kc.start_session(kc.user(user) or {}, "demo-portal")
        assert [s["id"] for s in await admin.user_sessions(user)] == [session["id"]]
        await admin.logout_user(user)
        assert await admin.user_sessions(user) == []
        with pytest.raises(AdminEmailNotConfiguredError, match="no SMTP server"):
            await admin.execute_actions_email(user, ["VERIFY_EMAIL"])
        kc.smtp = {"from": "keycloak@example.com", "host": "mail.example.com"}
        await admin.execute_actions_email(user, ["VERIFY_EMAIL"], lifespan=600)
        assert kc.sent_emails[-1]["lifespan"] == 600

    run(scenario)


def test_request_answers_json_none_or_the_new_id(
    kc: FakeKeycloak, run: Callable[..., None]
) -> None:
    async def scenario(admin: Any) -> None:
        assert await admin.request("GET", "users/count") == 1
        group = await admin.request("POST", "groups", json={"name": "staff"})
        assert kc.group(group) is not None
        assert await admin.request("DELETE", f"/groups/{group}/") is None
        assert kc.group(group) is None
        with pytest.raises(AdminNotFoundError, match="User not found"):
            await admin.request("POST", "users/nobody/logout")

    run(scenario)


@pytest.mark.parametrize(
    "path",
    ["..", "../master/users", "users/%2e%2e/x", "users/%252e%252e/x", "users%2F..%2Fx",
     "users/a%2Fb", "a//b", "users\\..", "users/%5C"],
)  # fmt: skip
def test_request_refuses_paths_that_leave_the_realm(path: str) -> None:
    with pytest.raises(ValueError, match="leaves the realm"):
        request("GET", path)


def test_request_quotes_segments_and_keeps_secrets_masked() -> None:
    call = request("put", "users/a b/reset-password", json={"type": "password", "value": "pw"})
    assert (call.method, call.path, call.role) == ("PUT", "/users/a%20b/reset-password",
                                                   "manage-users")  # fmt: skip
    assert "pw" not in repr(call) and call.body["value"] == "pw"
    assert request("GET", "organizations").role == "view-organizations"
    assert request("DELETE", "organizations/x").role == "manage-organizations"
    with pytest.raises(ValueError, match="params="):
        request("GET", "users?max=1")
    with pytest.raises(ValueError, match="method"):
        request("TRACE", "users")


def test_the_methods_carry_their_signatures() -> None:
    help_text = KeycloakAdmin.request.__doc__ or ""
    assert "the path stays in the realm" in help_text
    assert str(KeycloakAdmin.client_roles.__signature__).endswith(  # type: ignore[attr-defined]
        "-> list[keycloak_jwt_auth.admin.representations.RoleRepresentation]"
    )


def keycloak_user(*args: str) -> tuple[dict[str, Any], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("keycloak_user", *args, "--client", SUPPORT, "--json", stdout=out, stderr=err)
    return json.loads(out.getvalue()), err.getvalue()


def test_the_command_grants_client_roles_adds_to_orgs_logs_out_and_sends(
    kc: FakeKeycloak,
) -> None:
    kc.add_organization("Globex Corp", alias="globex")
    user = ada_id(kc)
    done, _ = keycloak_user("grant-client-role", "ada", "demo-portal", "viewer")
    assert kc.client_role_mappings[(user, kc.client("demo-portal").id)] == ["viewer"]
    done, _ = keycloak_user("add-to-org", "ada", "globex")
    assert done["organization"] == "globex" and user in kc.organizations[1]["members"]
    kc.start_session(kc.user(user) or {}, "demo-portal")
    done, _ = keycloak_user("logout", "ada")
    assert done["sessions"] == 1 and kc.sessions.get(user) is None
    kc.smtp = {"from": "keycloak@example.com"}
    done, _ = keycloak_user("send-actions", "ada", "VERIFY_EMAIL", "--lifespan", "60")
    assert kc.sent_emails[-1]["actions"] == ["VERIFY_EMAIL"]
    with pytest.raises(CommandError, match="No organization 'initech'"):
        keycloak_user("add-to-org", "ada", "initech")
    kc.smtp = None
    with pytest.raises(CommandError, match="no SMTP server"):
        keycloak_user("send-actions", "ada", "UPDATE_PASSWORD")
