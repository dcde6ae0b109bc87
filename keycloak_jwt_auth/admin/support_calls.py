"""The calls a provisioning or support service makes next: client roles, organizations,
sessions, required-action e-mails, and ``request`` for any other path below the realm.

Each is a ``Call`` (see ``calls``), or, when it must first turn a public ``clientId`` into
Keycloak's internal id, ``Steps``: a generator that yields the calls it needs, is sent each
answer, and returns the result. Both clients run either kind; neither describes a call itself.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator, Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import unquote

from keycloak_jwt_auth.admin.calls import (
    MANAGE_USERS,
    ROLES_BY_RESOURCE,
    Call,
    Reply,
    created_id,
    names_listed,
    realm_path,
    required_text,
    roles_named,
)
from keycloak_jwt_auth.admin.representations import (
    ClientRepresentation,
    MemberRepresentation,
    OrganizationRepresentation,
    RoleRepresentation,
    UserSessionRepresentation,
)
from keycloak_jwt_auth.exceptions import (
    AdminAPIError,
    AdminEmailNotConfiguredError,
    AdminNotFoundError,
)
from keycloak_jwt_auth.masked import Masked

J = TypeVar("J")
Steps = Generator[Call[Any], Any, J]

VIEW_CLIENTS = "view-clients"
# Keycloak 26.7's organization roles (manage-realm grants them too).
QUERY_ORGANIZATIONS = "query-organizations"
VIEW_ORGANIZATIONS = "view-organizations"
MANAGE_ORGANIZATIONS = "manage-organizations"
# What a client representation may carry that is a credential: never handed to the caller.
CLIENT_CREDENTIALS = ("secret", "registrationAccessToken")
NO_SMTP = "Invalid sender address 'null'"  # Keycloak's words when the realm has no SMTP server

# The role a write needs, by the resource its path starts with (request()'s 403 message).
WRITE_ROLES_BY_RESOURCE = {
    "users": MANAGE_USERS,
    "groups": MANAGE_USERS,
    "clients": "manage-clients",
    "organizations": MANAGE_ORGANIZATIONS,
    "events": "manage-events",
}
REQUEST_METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")
# The roles beyond the reads, and the calls that answer 403 without each (keycloak_doctor).
CALLS_BY_EXTRA_ROLE = {
    MANAGE_USERS: "the writes to users, groups and role mappings, logout_user, "
    "execute_actions_email",
    QUERY_ORGANIZATIONS: "organizations",
    VIEW_ORGANIZATIONS: "organization_members, user_organizations",
    MANAGE_ORGANIZATIONS: "create_organization, delete_organization, "
    "add_organization_member, remove_organization_member",
}


# --- client roles: client_id is always the public clientId ----------------------------------


def find_client(client_id: str) -> Call[ClientRepresentation | None]:
    """The client whose public ``clientId`` is ``client_id``, or None; never with its secret."""
    return dataclasses.replace(_clients_named(client_id), read=_the_client(client_id, None))


def client_roles(client_id: str) -> Steps[list[RoleRepresentation]]:
    """The roles of the client ``client_id`` (its public clientId)."""
    client = yield _client_lookup(client_id)
    path = realm_path("clients", client["id"], "roles")
    roles: list[RoleRepresentation] = yield Call(list[RoleRepresentation], path, VIEW_CLIENTS)
    return roles


def user_client_roles(user_id: str, client_id: str) -> Steps[list[RoleRepresentation]]:
    """The client's roles granted to the user directly (not through groups or composites)."""
    realm_path("users", user_id)  # refuse a bad id before any request
    client = yield _client_lookup(client_id)
    path = realm_path("users", user_id, "role-mappings", "clients", client["id"])
    role = "view-users' and 'view-clients"  # Keycloak checks both
    roles: list[RoleRepresentation] = yield Call(list[RoleRepresentation], path, role)
    return roles


def assign_client_roles(user_id: str, client_id: str, role_names: Iterable[str]) -> Steps[None]:
    """Grant the client's roles, by name (looked up first: an unknown name writes nothing)."""
    yield from _client_role_mapping("POST", user_id, client_id, role_names)


def remove_client_roles(user_id: str, client_id: str, role_names: Iterable[str]) -> Steps[None]:
    yield from _client_role_mapping("DELETE", user_id, client_id, role_names)


def _client_role_mapping(
    method: str, user_id: str, client_id: str, role_names: Iterable[str]
) -> Steps[None]:
    realm_path("users", user_id)
    names = names_listed(role_names, "role_names", of="client role", each="a role name")
    client = yield _client_lookup(client_id)
    roles = yield Call(list[RoleRepresentation], realm_path("clients", client["id"], "roles"),
                       VIEW_CLIENTS)  # fmt: skip
    unknown_are, holder = f"Unknown roles of client {client_id!r}", "it"
    body = roles_named(names, roles, unknown_are=unknown_are, holder=holder)
    path = realm_path("users", user_id, "role-mappings", "clients", client["id"])
    yield Call(type(None), path, MANAGE_USERS, method=method, body=body)


def _clients_named(client_id: str) -> Call[Any]:
    params = {"clientId": required_text(client_id, "a client id")}
    return Call(object, realm_path("clients"), VIEW_CLIENTS, params)


def _client_lookup(client_id: str) -> Call[ClientRepresentation]:
    """The client, or Keycloak's own 404 for a missing one (as its paths answer)."""
    return dataclasses.replace(_clients_named(client_id), read=_the_client(client_id, _missing))


def _missing(reply: Reply, client_id: str) -> ClientRepresentation:
    raise AdminNotFoundError(
        f"HTTP 404 (no client with clientId {client_id!r}): not found",
        status=404,
        body=reply.body,
        required_role=VIEW_CLIENTS,
        **reply.context(),
    )


def _the_client(client_id: str, missing: Any) -> Any:
    """Reads ``GET clients?clientId=``: the exact match, without its credentials."""

    def read(reply: Reply) -> ClientRepresentation | None:
        found = reply.body if isinstance(reply.body, list) else []
        for client in found:
            if isinstance(client, dict) and client.get("clientId") == client_id:
                shown = {k: v for k, v in client.items() if k not in CLIENT_CREDENTIALS}
                return shown  # type: ignore[return-value]
        return None if missing is None else missing(reply, client_id)

    return read


# --- organizations (the realm needs "Organizations" enabled) --------------------------------


def organizations(
    *, search: str | None = None, first: int = 0, max: int = 100
) -> Call[list[OrganizationRepresentation]]:
    """One page of organizations (``search``: in the name or a domain)."""
    params = {"first": first, "max": max, **({"search": search} if search else {})}
    path = realm_path("organizations")
    return Call(list[OrganizationRepresentation], path, QUERY_ORGANIZATIONS, params)


def create_organization(representation: OrganizationRepresentation) -> Call[str]:
    """Create an organization; the answer is its id. A name with spaces needs an ``alias``."""
    if not isinstance(representation, Mapping):
        raise TypeError("an organization is a dict (OrganizationRepresentation)")
    required_text(representation.get("name"), "an organization name")
    path = realm_path("organizations")
    return Call(str, path, MANAGE_ORGANIZATIONS, method="POST", body=dict(representation),
                created="/organizations")  # fmt: skip


def delete_organization(org_id: str) -> Call[None]:
    path = realm_path("organizations", org_id)
    return Call(type(None), path, MANAGE_ORGANIZATIONS, method="DELETE")


def organization_members(
    org_id: str, *, first: int = 0, max: int = 100
) -> Call[list[MemberRepresentation]]:
    """One page of the organization's members (Keycloak pages by 10 unless told)."""
    path = realm_path("organizations", org_id, "members")
    role = f"{VIEW_ORGANIZATIONS}' and 'view-users"
    return Call(list[MemberRepresentation], path, role, {"first": first, "max": max})


def add_organization_member(org_id: str, user_id: str) -> Call[None]:
    path = realm_path("organizations", org_id, "members")
    body = required_text(user_id, "a user id")  # Keycloak takes the id as a JSON string
    return Call(type(None), path, MANAGE_ORGANIZATIONS, method="POST", body=body)


def remove_organization_member(org_id: str, user_id: str) -> Call[None]:
    path = realm_path("organizations", org_id, "members", user_id)
    return Call(type(None), path, MANAGE_ORGANIZATIONS, method="DELETE")


def user_organizations(user_id: str) -> Call[list[OrganizationRepresentation]]:
    """The organizations the user is a member of."""
    path = realm_path("organizations", "members", user_id, "organizations")
    return Call(list[OrganizationRepresentation], path, VIEW_ORGANIZATIONS)


# --- sessions and e-mails --------------------------------------------------------------------


def user_sessions(user_id: str) -> Call[list[UserSessionRepresentation]]:
    """The user's active sessions (each ``id`` is the ``sid`` of its tokens)."""
    path = realm_path("users", user_id, "sessions")
    return Call(list[UserSessionRepresentation], path, "view-users")


def logout_user(user_id: str) -> Call[None]:
    """End every session of the user: their refresh tokens stop working at once."""
    path = realm_path("users", user_id, "logout")
    return Call(type(None), path, MANAGE_USERS, method="POST")


def execute_actions_email(
    user_id: str, actions: Iterable[str], *, lifespan: int | None = None
) -> Call[None]:
    """E-mail the user a link to do ``actions`` (e.g. ``["VERIFY_EMAIL", "UPDATE_PASSWORD"]``),
    valid ``lifespan`` seconds (Keycloak's default: 12 hours). A realm without SMTP raises
    ``AdminEmailNotConfiguredError``."""
    path = realm_path("users", user_id, "execute-actions-email")
    params = None if lifespan is None else {"lifespan": int(lifespan)}
    body = names_listed(actions, "actions", of="required action", each="an action")
    return Call(type(None), path, MANAGE_USERS, params, method="PUT", body=body,
                explain=_no_smtp)  # fmt: skip


def _no_smtp(error: AdminAPIError) -> AdminAPIError:
    if error.status != 500 or NO_SMTP not in str(error.detail(error.body)):
        return error
    return AdminEmailNotConfiguredError(
        f"HTTP 500 ({NO_SMTP}): {AdminEmailNotConfiguredError.explanation}",
        status=error.status,
        method=error.method,
        path=error.path,
        body=error.body,
        required_role=error.required_role,
    )


# --- any other path ------------------------------------------------------------------------


def request(
    method: str,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    json: Any = None,
) -> Call[Any]:
    """Any Admin API call below the realm, e.g. ``request("GET", "users/profile")``, with the
    typed calls' rules: the path stays in the realm however it is encoded, no redirect, the
    size cap, typed errors, a write sent once. The answer is the JSON (None when empty; a
    create's: the new id from its ``Location``)."""
    method = required_text(method, "an HTTP method").upper()
    if method not in REQUEST_METHODS:
        raise ValueError(f"method must be one of {', '.join(REQUEST_METHODS)}, not {method!r}")
    relative = realm_path(*_segments(path)) if path.strip("/") else ""
    resource = unquote(relative.split("/")[1]) if relative else ""
    roles = ROLES_BY_RESOURCE if method == "GET" else WRITE_ROLES_BY_RESOURCE
    role = roles.get(resource, "view-realm" if method == "GET" else "manage-realm")
    body = None if json is None else _masked(json)
    return Call(object, relative, role, dict(params or {}) or None, method=method, body=body,
                read=_any_answer)  # fmt: skip


def _segments(path: str) -> list[str]:
    """The path's segments, each decoded once (``realm_path`` quotes them again); refused when
    it names a query, or when a segment, decoded as often as a proxy might, holds a slash or
    leaves the realm."""
    if not isinstance(path, str):
        raise TypeError(f"path is a str, not {type(path).__name__}")
    if "?" in path or "#" in path:
        raise ValueError(f"Put the query in params=, not in the path: {path!r}")
    segments = path.strip("/").split("/")
    for segment in segments:
        decoded = segment
        for _ in range(3):
            decoded = unquote(decoded)
        if "/" in decoded or decoded.strip() in ("", ".", "..") or "\\" in decoded:
            raise ValueError(f"Refusing a path segment that leaves the realm: {segment!r}")
    return [unquote(segment) for segment in segments]


def _any_answer(reply: Reply) -> Any:
    if reply.status == 201 and reply.body is None and reply.location:
        collection = dataclasses.replace(reply.call, created=reply.call.path)
        return created_id(collection, reply.status, reply.location, reply.realm)
    return reply.body


SECRET_KEYS = frozenset({"value", "password", "secret", "client_secret", "secretData"})


def _masked(body: Any) -> Any:
    """``json`` with every string under a credential-like key held masked (no repr shows it)."""
    if isinstance(body, Mapping):
        return {
            k: Masked(v) if k in SECRET_KEYS and isinstance(v, str) else _masked(v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_masked(item) for item in body]
    return body
