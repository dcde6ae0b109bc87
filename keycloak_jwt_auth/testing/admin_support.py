"""The fake's answers to the support calls: client roles, organizations, sessions and
execute-actions-email, as Keycloak 26.7 answers them (statuses, bodies and the order of its
checks measured against the real one), and the realm-management roles each needs there."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Protocol

from keycloak_jwt_auth.testing.realm import Realm, user_representation
from keycloak_jwt_auth.testing.wire import (
    NO_CONTENT,
    AdminRequest,
    Answer,
    Answered,
    admin_message,
)


class AdminApi(Protocol):
    """What these handlers read of ``admin_api.AdminApi`` (which routes to them)."""

    realm: Realm


# Keycloak 26.7: a role grants the lesser ones it implies (manage-realm: organizations too).
IMPLIED_ROLES = {
    "manage-organizations": ("view-organizations", "query-organizations"),
    "view-organizations": ("query-organizations",),
    "manage-realm": ("view-realm", "manage-organizations", "view-organizations",
                     "query-organizations"),
}  # fmt: skip
ORGANIZATION_NOT_FOUND = "Organization not found."
NO_SMTP = (
    "Failed to send execute actions email: Invalid sender address 'null'. If the address "
    "contains UTF-8 characters in the local part please ensure the SMTP server supports the "
    "SMTPUTF8 extension and enable 'Allow UTF-8' in the email realm configuration."
)
REQUIRED_ACTIONS = (
    *("VERIFY_EMAIL", "UPDATE_PASSWORD", "UPDATE_PROFILE", "CONFIGURE_TOTP", "VERIFY_PROFILE"),
    *("update_user_locale", "webauthn-register", "webauthn-register-passwordless"),
    "delete_credential",
)
NOT_FOUND = Answer(404, {"error": "HTTP 404 Not Found"})
DEFAULT_PAGE = 10  # organizations and their members, when first/max are not given


def required_roles(method: str, segments: list[str]) -> tuple[str, ...]:
    """The roles these paths need, where Keycloak's rule is not the plain one (a GET: the
    resource's read role; anything else: manage-users); () elsewhere."""
    if segments[:1] == ["organizations"]:
        if method != "GET":
            return ("manage-organizations",)
        if len(segments) == 1:
            return ("query-organizations",)
        if segments[2:] == ["members"]:
            return ("view-organizations", "view-users")
        return ("view-organizations",)
    if method == "GET" and segments[2:4] == ["role-mappings", "clients"]:
        return ("view-users", "view-clients")
    return ()


def _user(realm: Realm, user_id: str, missing: Answer | None = None) -> dict[str, Any]:
    user = realm.user(user_id)
    if user is None:
        raise Answered(missing or Answer(404, {"error": "User not found"}))
    return user


def _client_roles(realm: Realm, client_id: str, missing: str) -> list[dict[str, Any]]:
    if all(client.id != client_id for client in realm.clients.values()):
        raise Answered(Answer(404, {"error": missing}))
    return realm.client_roles.get(client_id, [])


def _organization(realm: Realm, org_id: str) -> dict[str, Any]:
    for organization in realm.organizations:
        if organization["id"] == org_id:
            return organization
    raise Answered(admin_message(404, ORGANIZATION_NOT_FOUND))


def _page(request: AdminRequest, items: list[Any]) -> list[Any]:
    first = int(request.query.get("first", 0))
    return items[first : first + int(request.query.get("max", DEFAULT_PAGE))]


def _shown(organization: dict[str, Any], *, brief: bool = True) -> dict[str, Any]:
    shown = {k: v for k, v in organization.items() if k != "members"}
    return shown if brief else {**shown, "attributes": {}}


# --- client roles ------------------------------------------------------------------------------


def client_roles(api: AdminApi, request: AdminRequest, client_id: str) -> Answer:
    return Answer(200, _client_roles(api.realm, client_id, "Could not find client"))


def user_client_roles(api: AdminApi, request: AdminRequest, user_id: str, client: str) -> Answer:
    _user(api.realm, user_id)
    roles = _client_roles(api.realm, client, "Client not found")
    names = api.realm.client_role_mappings.get((user_id, client), [])
    return Answer(200, [role for role in roles if role["name"] in names])


def _mapped(api: AdminApi, request: AdminRequest, user_id: str, client: str) -> list[str]:
    """The names of the roles listed: each must be one of the client's, by name and id."""
    _user(api.realm, user_id)
    known = {(r["name"], r["id"]) for r in _client_roles(api.realm, client, "Client not found")}
    listed = request.body if isinstance(request.body, list) else []
    for role in listed:
        if not isinstance(role, dict) or (role.get("name"), role.get("id")) not in known:
            raise Answered(Answer(404, {"error": "Role not found"}))
    return [role["name"] for role in listed]


def add_client_roles(api: AdminApi, request: AdminRequest, user_id: str, client: str) -> Answer:
    added = _mapped(api, request, user_id, client)
    names = api.realm.client_role_mappings.setdefault((user_id, client), [])
    names += [name for name in added if name not in names]
    return NO_CONTENT


def remove_client_roles(api: AdminApi, request: AdminRequest, user_id: str, client: str) -> Answer:
    removed = _mapped(api, request, user_id, client)
    names = api.realm.client_role_mappings.get((user_id, client), [])
    api.realm.client_role_mappings[(user_id, client)] = [n for n in names if n not in removed]
    return NO_CONTENT


def all_role_mappings(api: AdminApi, request: AdminRequest, user_id: str) -> Answer:
    """``GET users/{id}/role-mappings``: the realm's and each client's, empty ones left out."""
    realm = api.realm
    _user(realm, user_id)
    names = realm.role_mappings.get(user_id, [])
    answer: dict[str, Any] = {}
    if names:
        answer["realmMappings"] = [r for r in realm.realm_roles if r["name"] in names]
    for client in realm.clients.values():
        mapped = realm.client_role_mappings.get((user_id, client.id), [])
        roles = [r for r in realm.client_roles.get(client.id, []) if r["name"] in mapped]
        if roles:
            mapping = {"id": client.id, "client": client.client_id, "mappings": roles}
            answer.setdefault("clientMappings", {})[client.client_id] = mapping
    return Answer(200, answer)


# --- organizations -------------------------------------------------------------------------


def organizations(api: AdminApi, request: AdminRequest) -> Answer:
    search = request.query.get("search", "").lower()
    exact = request.query.get("exact") == "true"
    found = [
        _shown(o)
        for o in api.realm.organizations
        if (o["name"].lower() == search if exact else search in o["name"].lower())
    ]
    return Answer(200, _page(request, found))


def organization(api: AdminApi, request: AdminRequest, org_id: str) -> Answer:
    return Answer(200, _shown(_organization(api.realm, org_id), brief=False))


def create_organization(api: AdminApi, request: AdminRequest) -> Answer:
    body = request.body if isinstance(request.body, dict) else {}
    name, alias = body.get("name"), body.get("alias") or body.get("name")
    if not isinstance(name, str) or not name:
        raise Answered(admin_message(400, "Name can not be null"))
    if any(char.isspace() for char in str(alias)):
        raise Answered(admin_message(400, "Name cannot be used as alias: Empty Space not allowed."))
    for key, value, dot in (("name", name, "."), ("alias", alias, "")):
        if any(o[key] == value for o in api.realm.organizations):
            message = f"A organization with the same {key} already exists{dot}"
            raise Answered(admin_message(409, message))
    fields = {k: body[k] for k in ("description", "domains", "redirectUrl") if k in body}
    created = api.realm.add_organization(name, alias=str(alias))
    created.update(fields, enabled=body.get("enabled", True))
    location = f"{api.realm.admin_url}/organizations/{created['id']}"
    return Answer(201, None, location=location)


def delete_organization(api: AdminApi, request: AdminRequest, org_id: str) -> Answer:
    api.realm.organizations.remove(_organization(api.realm, org_id))
    return NO_CONTENT


def members(api: AdminApi, request: AdminRequest, org_id: str) -> Answer:
    ids = _organization(api.realm, org_id)["members"]
    found = [u for u in api.realm.users if u["id"] in ids]
    shown = [{**user_representation(u, brief=True), "membershipType": "UNMANAGED"} for u in found]
    return Answer(200, _page(request, shown))


def add_member(api: AdminApi, request: AdminRequest, org_id: str) -> Answer:
    organization = _organization(api.realm, org_id)
    user = _user(api.realm, str(request.body), missing=NOT_FOUND)
    if user["id"] in organization["members"]:
        raise Answered(admin_message(409, "User is already a member of the organization."))
    organization["members"].append(user["id"])
    location = f"{api.realm.admin_url}/organizations/{org_id}/members/{user['id']}"
    return Answer(201, None, location=location)


def remove_member(api: AdminApi, request: AdminRequest, org_id: str, user_id: str) -> Answer:
    organization = _organization(api.realm, org_id)
    if user_id not in organization["members"]:
        raise Answered(NOT_FOUND)
    organization["members"].remove(user_id)
    return NO_CONTENT


def user_organizations(api: AdminApi, request: AdminRequest, user_id: str) -> Answer:
    _user(api.realm, user_id, missing=NOT_FOUND)
    joined = [o for o in api.realm.organizations if user_id in o["members"]]
    brief = ("id", "name", "alias", "enabled")
    return Answer(200, [{k: o[k] for k in brief} for o in joined])


# --- sessions and e-mails ----------------------------------------------------------------------


def sessions(api: AdminApi, request: AdminRequest, user_id: str) -> Answer:
    _user(api.realm, user_id)
    return Answer(200, api.realm.sessions.get(user_id, []))


def logout(api: AdminApi, request: AdminRequest, user_id: str) -> Answer:
    _user(api.realm, user_id)
    api.realm.sessions.pop(user_id, None)
    return NO_CONTENT


def execute_actions_email(api: AdminApi, request: AdminRequest, user_id: str) -> Answer:
    user = _user(api.realm, user_id)
    if not user.get("email"):
        raise Answered(admin_message(400, "User email missing"))
    if not user.get("enabled"):
        raise Answered(admin_message(400, "User is disabled"))
    actions = request.body if isinstance(request.body, list) else []
    if any(action not in REQUIRED_ACTIONS for action in actions):
        raise Answered(admin_message(400, "Provided invalid required actions"))
    if api.realm.smtp is None:
        raise Answered(admin_message(500, NO_SMTP))
    lifespan = int(request.query.get("lifespan", 43200))
    sent = {"to": user["email"], "actions": actions, "lifespan": lifespan}
    api.realm.sent_emails.append({**sent, "id": str(uuid.uuid4())})
    return NO_CONTENT


Handler = Callable[..., Answer]
USER = r"users/([^/]+)"
ROUTES: list[tuple[str, str, Handler]] = [
    ("GET", r"clients/([^/]+)/roles", client_roles),
    ("GET", rf"{USER}/role-mappings", all_role_mappings),
    ("GET", rf"{USER}/role-mappings/clients/([^/]+)", user_client_roles),
    ("POST", rf"{USER}/role-mappings/clients/([^/]+)", add_client_roles),
    ("DELETE", rf"{USER}/role-mappings/clients/([^/]+)", remove_client_roles),
    ("GET", r"organizations", organizations),
    ("POST", r"organizations", create_organization),
    ("GET", r"organizations/members/([^/]+)/organizations", user_organizations),
    ("GET", r"organizations/([^/]+)", organization),
    ("DELETE", r"organizations/([^/]+)", delete_organization),
    ("GET", r"organizations/([^/]+)/members", members),
    ("POST", r"organizations/([^/]+)/members", add_member),
    ("DELETE", r"organizations/([^/]+)/members/([^/]+)", remove_member),
    ("GET", rf"{USER}/sessions", sessions),
    ("POST", rf"{USER}/logout", logout),
    ("PUT", rf"{USER}/execute-actions-email", execute_actions_email),
]
