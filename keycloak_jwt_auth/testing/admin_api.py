"""The fake's Admin API: the routes below ``/admin/realms/{realm}`` over the in-memory ``Realm``,
each answered as Keycloak 26.7 answers it (statuses, ``Location`` headers, error bodies, its
checks in its order), behind Keycloak's realm-management role rules, stated here as Keycloak
applies them rather than taken from the client."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any
from urllib.parse import unquote

import jwt

from keycloak_jwt_auth.testing import admin_support
from keycloak_jwt_auth.testing.realm import Realm
from keycloak_jwt_auth.testing.realm import user_representation as _user_representation
from keycloak_jwt_auth.testing.wire import (
    NO_CONTENT,
    AdminRequest,
    Answer,
    Answered,
    admin_message,
    oauth_error,
)

# Keycloak's rules: a GET needs the read role of the resource its path starts with (view-realm
# for any other), every other method manage-users; and a role grants the lesser ones it implies.
MANAGE_USERS = "manage-users"
READ_ROLE_BY_RESOURCE = {
    "": "view-realm",
    "users": "view-users",
    "groups": "query-groups",
    "group-by-path": "view-users",
    "roles": "view-realm",
    "clients": "view-clients",
}
IMPLIED_ROLES = {
    "manage-users": ("view-users", "query-groups"),
    "view-users": ("query-groups",),
    **admin_support.IMPLIED_ROLES,
}

WRITABLE_USER_KEYS = (
    *("username", "email", "firstName", "lastName"),
    *("enabled", "emailVerified", "attributes", "requiredActions"),
)
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # looser than Keycloak's validator, enough for tests


class AdminApi:
    """Answers Admin API requests for ``realm``, to bearers of the tokens ``verify_token``
    accepts (the fake's own), one request at a time."""

    def __init__(self, realm: Realm, verify_token: Callable[[str], Mapping[str, Any]]) -> None:
        self.realm = realm
        self.verify_token = verify_token
        self._lock = threading.Lock()

    def answer(
        self, method: str, path: str, query: Mapping[str, str], bearer: str, body: bytes = b""
    ) -> Answer:
        """``path``: below the realm's Admin API URL."""
        try:
            claims = self.verify_token(bearer)
        except jwt.PyJWTError:
            return Answer(401, {"error": "HTTP 401 Unauthorized"})
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        roles = claims.get("resource_access", {}).get("realm-management", {}).get("roles", [])
        for route_method, pattern, handler in ADMIN_ROUTES:
            match = re.fullmatch(pattern, "/".join(segments))
            if route_method == method and match:
                if not set(_required_roles(method, segments)) <= _granted(roles):
                    return Answer(403, {"error": "HTTP 403 Forbidden"})
                return self._handle(handler, query, body, match.groups())
        return Answer(404, {"error": "HTTP 404 Not Found"})

    def _handle(
        self, handler: Handler, query: Mapping[str, str], body: bytes, ids: tuple[str, ...]
    ) -> Answer:
        try:
            request = AdminRequest(query, _json_of(body))
            with self._lock:
                return handler(self, request, *ids)
        except Answered as answered:
            return answered.answer

    def _user_by_id(self, user_id: str) -> dict[str, Any]:
        user = self.realm.user(user_id)
        if user is None:
            raise Answered(Answer(404, {"error": "User not found"}))
        return user

    def _group_by_id(
        self, group_id: str, missing: str = "Could not find group by id"
    ) -> dict[str, Any]:
        group = self.realm.group(group_id)
        if group is None:
            raise Answered(Answer(404, {"error": missing}))
        return group

    # --- reads -------------------------------------------------------------------------

    def _realm_representation(self, request: AdminRequest) -> Answer:
        lifespan = self.realm.token_lifespan
        body = {"realm": self.realm.realm, "enabled": True, "accessTokenLifespan": lifespan}
        return Answer(200, body)

    def _users(self, request: AdminRequest) -> Answer:
        query = request.query
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        brief = query.get("briefRepresentation") == "true"
        found = _matching_users(self.realm.users, query)[first : first + size]
        return Answer(200, [_user_representation(u, brief=brief) for u in found])

    def _users_count(self, request: AdminRequest) -> Answer:
        return Answer(200, len(_matching_users(self.realm.users, request.query)))

    def _user(self, request: AdminRequest, user_id: str) -> Answer:
        return Answer(200, _user_representation(self._user_by_id(user_id), brief=False))

    def _groups(self, request: AdminRequest) -> Answer:
        """Top-level groups (the search, unlike Keycloak's, looks at their names only)."""
        query = request.query
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        search = query.get("search", "").lower()
        groups = self.realm.groups
        top = [g for g in groups if "parentId" not in g and search in g["name"].lower()]
        shown = top[first : first + size]
        return Answer(200, [self.realm.group_representation(g) for g in shown])

    def _group_members(self, request: AdminRequest, group_id: str) -> Answer:
        group = self._group_by_id(group_id)
        first, size = int(request.query.get("first", 0)), int(request.query.get("max", 100))
        users = self.realm.users
        members = [u for u in users if u["id"] in group["members"]][first : first + size]
        return Answer(200, [_user_representation(u, brief=True) for u in members])

    def _group_by_path(self, request: AdminRequest, path: str) -> Answer:
        for group in self.realm.groups:
            if group["path"] == f"/{path}":
                return Answer(200, self.realm.group_representation(group))
        raise Answered(Answer(404, {"error": "Group path does not exist"}))

    def _roles(self, request: AdminRequest) -> Answer:
        search = request.query.get("search", "").lower()
        return Answer(200, [r for r in self.realm.realm_roles if search in r["name"].lower()])

    def _clients(self, request: AdminRequest) -> Answer:
        wanted = request.query.get("clientId")
        found = [c for c in self.realm.clients.values() if wanted in (None, c.client_id)]
        return Answer(200, [c.representation() for c in found])

    # --- writes: Keycloak 26.7's checks in its order, its words ------------------------

    def _create_user(self, request: AdminRequest) -> Answer:
        fields = _user_fields(request.body)
        username = str(fields.pop("username", None) or "").strip()
        if not username:
            raise Answered(_message(400, "User name is missing"))
        self._refuse_duplicates({**fields, "username": username})
        _refuse_invalid_profile(fields)
        passwords = _passwords_to_set(request.body, self.realm.password_min_length, creating=True)
        user = self.realm.add_user(username, **{"enabled": False, **fields})  # disabled unless told
        self._store_passwords(user, passwords)
        return Answer(201, None, location=f"{self.realm.admin_url}/users/{user['id']}")

    def _update_user(self, request: AdminRequest, user_id: str) -> Answer:
        """Merges the fields given (a partial PUT keeps the others)."""
        user = self._user_by_id(user_id)
        fields = _user_fields(request.body)
        if "username" in fields and not str(fields["username"] or "").strip():
            raise Answered(_message(400, "User name is missing"))
        self._refuse_duplicates(fields, user_id=user_id)
        _refuse_invalid_profile(fields)
        passwords = _passwords_to_set(request.body, self.realm.password_min_length, creating=False)
        user.update(fields)
        self._store_passwords(user, passwords)
        return NO_CONTENT

    def _delete_user(self, request: AdminRequest, user_id: str) -> Answer:
        self.realm.remove_user(self._user_by_id(user_id))
        return NO_CONTENT

    def _reset_password(self, request: AdminRequest, user_id: str) -> Answer:
        user = self._user_by_id(user_id)
        credential = request.body if isinstance(request.body, dict) else {}
        password = credential.get("value")
        if not isinstance(password, str):
            raise Answered(Answer(400, {"error": "No password provided"}))
        if not password.strip():
            raise Answered(Answer(400, {"error": "Empty password not allowed"}))
        _refuse_weak_password(password, self.realm.password_min_length, creating=False)
        self._store_passwords(user, [(password, credential.get("temporary") is True)])
        return NO_CONTENT

    def _refuse_duplicates(self, fields: Mapping[str, Any], *, user_id: str | None = None) -> None:
        others = [user for user in self.realm.users if user["id"] != user_id]
        for key in ("username", "email"):
            value = str(fields.get(key) or "").lower()
            if value and any(str(user.get(key, "")).lower() == value for user in others):
                raise Answered(_message(409, f"User exists with same {key}"))

    def _store_passwords(self, user: dict[str, Any], passwords: list[tuple[str, bool]]) -> None:
        """Each (password, temporary) in turn: the last one stays."""
        for password, temporary in passwords:
            self.realm.set_password(user, password, temporary=temporary)

    def _user_groups(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        joined = [g for g in self.realm.groups if user_id in g["members"]]
        return Answer(200, [self.realm.group_representation(g) for g in joined])

    def _join_group(self, request: AdminRequest, user_id: str, group_id: str) -> Answer:
        self._user_by_id(user_id)
        group = self._group_by_id(group_id, missing="Group not found")
        if user_id not in group["members"]:
            group["members"].append(user_id)
        return NO_CONTENT

    def _leave_group(self, request: AdminRequest, user_id: str, group_id: str) -> Answer:
        self._user_by_id(user_id)
        group = self._group_by_id(group_id, missing="Group not found")
        group["members"] = [member for member in group["members"] if member != user_id]
        return NO_CONTENT

    def _user_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        names = self.realm.role_mappings.get(user_id, [])
        return Answer(200, [r for r in self.realm.realm_roles if r["name"] in names])

    def _add_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        names = self.realm.role_mappings.setdefault(user_id, [])
        names += [n for n in self._roles_named(request.body) if n not in names]
        return NO_CONTENT

    def _remove_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        removed = self._roles_named(request.body)
        kept = [n for n in self.realm.role_mappings.get(user_id, []) if n not in removed]
        self.realm.role_mappings[user_id] = kept
        return NO_CONTENT

    def _roles_named(self, representations: Any) -> list[str]:
        """The names of the realm roles a body lists; each must match a role's name and id."""
        known = {(r["name"], r["id"]) for r in self.realm.realm_roles}
        listed = representations if isinstance(representations, list) else []
        for role in listed:
            if not isinstance(role, dict) or (role.get("name"), role.get("id")) not in known:
                raise Answered(Answer(404, {"error": "Role not found"}))
        return [role["name"] for role in listed]

    def _create_group(self, request: AdminRequest) -> Answer:
        group = self.realm.add_group(self._new_group_name(request.body, parent=None))
        return Answer(201, None, location=f"{self.realm.admin_url}/groups/{group['id']}")

    def _create_subgroup(self, request: AdminRequest, parent_id: str) -> Answer:
        parent = self._group_by_id(parent_id)
        name = self._new_group_name(request.body, parent=parent)
        group = self.realm.add_group(name, parent=parent)
        return Answer(201, group, location=f"{self.realm.admin_url}/groups/{group['id']}")

    def _new_group_name(self, body: Any, *, parent: Mapping[str, Any] | None) -> str:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise Answered(_message(400, "Group name is missing"))
        groups = self.realm.groups
        siblings = [g for g in groups if g.get("parentId") == (parent or {}).get("id")]
        if any(g["name"] == name for g in siblings):
            kind = "Top level group" if parent is None else "Sibling group"
            raise Answered(_message(409, f"{kind} named '{name}' already exists."))
        return name

    def _delete_group(self, request: AdminRequest, group_id: str) -> Answer:
        self.realm.remove_group(self._group_by_id(group_id))
        return NO_CONTENT


Handler = Callable[..., Answer]  # (admin api, request, *ids from the path) -> answer
Route = tuple[str, str, Handler]
# The Admin API, one row per endpoint below /admin/realms/{realm}: (method, path pattern, handler).
ADMIN_ROUTES: list[Route] = [
    ("GET", r"", AdminApi._realm_representation),
    ("GET", r"users", AdminApi._users),
    ("POST", r"users", AdminApi._create_user),
    ("GET", r"users/count", AdminApi._users_count),
    ("GET", r"users/([^/]+)", AdminApi._user),
    ("PUT", r"users/([^/]+)", AdminApi._update_user),
    ("DELETE", r"users/([^/]+)", AdminApi._delete_user),
    ("PUT", r"users/([^/]+)/reset-password", AdminApi._reset_password),
    ("GET", r"users/([^/]+)/groups", AdminApi._user_groups),
    ("PUT", r"users/([^/]+)/groups/([^/]+)", AdminApi._join_group),
    ("DELETE", r"users/([^/]+)/groups/([^/]+)", AdminApi._leave_group),
    ("GET", r"users/([^/]+)/role-mappings/realm", AdminApi._user_role_mappings),
    ("POST", r"users/([^/]+)/role-mappings/realm", AdminApi._add_role_mappings),
    ("DELETE", r"users/([^/]+)/role-mappings/realm", AdminApi._remove_role_mappings),
    ("GET", r"groups", AdminApi._groups),
    ("POST", r"groups", AdminApi._create_group),
    ("POST", r"groups/([^/]+)/children", AdminApi._create_subgroup),
    ("DELETE", r"groups/([^/]+)", AdminApi._delete_group),
    ("GET", r"groups/([^/]+)/members", AdminApi._group_members),
    ("GET", r"group-by-path/(.+)", AdminApi._group_by_path),
    ("GET", r"roles", AdminApi._roles),
    ("GET", r"clients", AdminApi._clients),
    *admin_support.ROUTES,
]


def _required_roles(method: str, segments: list[str]) -> tuple[str, ...]:
    special = admin_support.required_roles(method, segments)
    if special:
        return special
    if method != "GET":
        return (MANAGE_USERS,)
    return (READ_ROLE_BY_RESOURCE.get(segments[0] if segments else "", "view-realm"),)


def _granted(roles: Iterable[str]) -> set[str]:
    roles = set(roles)
    return roles.union(*(IMPLIED_ROLES.get(role, ()) for role in roles))


def _json_of(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise Answered(oauth_error(400, "invalid_request", "Cannot parse the JSON")) from None


_message = admin_message


def _user_fields(body: Any) -> dict[str, Any]:
    """The representation's fields the fake keeps; Keycloak keeps usernames and emails
    lowercase."""
    if not isinstance(body, dict):
        raise Answered(oauth_error(400, "invalid_request", "Cannot parse the JSON"))
    fields = {key: body[key] for key in WRITABLE_USER_KEYS if key in body}
    for key in ("username", "email"):
        if isinstance(fields.get(key), str):
            fields[key] = fields[key].lower()
    return fields


def _refuse_invalid_profile(fields: Mapping[str, Any]) -> None:
    """The user profile's validators (only the email's here), in Keycloak's field-error shape."""
    email = fields.get("email")
    if email and not (isinstance(email, str) and EMAIL.fullmatch(email)):
        error = {
            "field": "email",
            "errorMessage": "error-invalid-email",
            "params": ["email", email],
        }
        raise Answered(Answer(400, error))


def _passwords_in(body: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(password, temporary) of each password credential of a user representation."""
    credentials = body.get("credentials")
    return [
        (credential["value"], credential.get("temporary") is True)
        for credential in (credentials if isinstance(credentials, list) else [])
        if isinstance(credential, dict)
        and credential.get("type") == "password"
        and isinstance(credential.get("value"), str)
    ]


def _matching_users(users: list[dict[str, Any]], query: Mapping[str, str]) -> list[dict[str, Any]]:
    """GET /users' search: ``search`` in any name field, or each name field given (``exact``)."""
    search = query.get("search", "").strip("*").lower()
    exact = query.get("exact") == "true"

    def matches(user: dict[str, Any]) -> bool:
        fields = ("username", "email", "firstName", "lastName")
        if search and not any(search in str(user.get(f, "")).lower() for f in fields):
            return False
        for key in ("username", "email", "firstName", "lastName"):
            wanted = query.get(key, "").lower()
            value = str(user.get(key, "")).lower()
            if wanted and (value != wanted if exact else wanted not in value):
                return False
        return True

    return sorted(filter(matches, users), key=lambda u: u["username"])


def _passwords_to_set(body: Any, minimum: int | None, *, creating: bool) -> list[tuple[str, bool]]:
    """The password credentials of a user representation, once all meet the policy."""
    passwords = _passwords_in(body)
    for password, _ in passwords:
        _refuse_weak_password(password, minimum, creating=creating)
    return passwords


def _refuse_weak_password(password: str, minimum: int | None, *, creating: bool) -> None:
    """The realm's policy (``minimum`` length), refused in Keycloak's words (which never echo
    the password); a create with credentials says only "Password policy not met"."""
    if minimum is None or len(password) >= minimum:
        return
    if creating:
        raise Answered(_message(400, "Password policy not met"))
    description = f"Invalid password: minimum length {minimum}."
    raise Answered(oauth_error(400, "invalidPasswordMinLengthMessage", description))
