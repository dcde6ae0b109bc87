"""The Admin API calls: each request described once as a ``Call`` (path, query, body, the role
it needs), built from checked input; and how an answer becomes its result or an error. Both
clients (``clients.py``) send these; neither holds a description of its own."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast, get_origin, is_typeddict
from urllib.parse import quote, unquote, urlsplit

from keycloak_jwt_auth.admin.credentials import (
    CREDENTIAL_SECRETS,
    masked_credential_members,
    refuse_non_json,
)
from keycloak_jwt_auth.admin.representations import (
    ClientRepresentation,
    GroupRepresentation,
    RoleRepresentation,
    UserRepresentation,
)
from keycloak_jwt_auth.exceptions import AdminAPIError, AdminUnavailableError
from keycloak_jwt_auth.http.transport import ADMIN_BODY_LIMIT
from keycloak_jwt_auth.masked import Masked, kind_of
from keycloak_jwt_auth.settings import ClientConfig

J = TypeVar("J")

# The realm-management role each part of the Admin API needs (for 403 messages).
ROLES_BY_RESOURCE = {
    "users": "view-users",
    "groups": "query-groups",
    "roles": "view-realm",
    "clients": "view-clients",
    "events": "view-events",
    "organizations": "view-organizations",
    "": "view-realm",
}


def realm_path(*segments: str) -> str:
    """``/a/b`` with every segment URL-quoted: an id like ``../../master`` stays one segment,
    and a segment that would still climb (``..``, ``.``) is refused."""
    for segment in segments:
        if not str(segment).strip():
            raise ValueError(f"Refusing an empty path segment (an empty id?) in {segments!r}")
        _refuse_climbing(str(segment))
    return "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


def _refuse_climbing(segment: str) -> None:
    # Servers (and proxies before them) decode %2e and %2F, maybe more than once, and may treat
    # a backslash as a slash: judge the segment fully decoded. A '/' in an id would be sent as
    # %2F, and a proxy that decodes it turns "UID/groups/GID" into another endpoint.
    decoded = _fully_decoded(segment)
    if decoded.strip() in (".", "..") or "\\" in decoded or "/" in decoded:
        raise ValueError(
            f"Refusing a path segment that leaves the realm or its resource: {segment!r}"
        )


def _fully_decoded(segment: str) -> str:
    for _ in range(5):
        decoded = unquote(segment)
        if decoded == segment:
            break
        segment = decoded
    return segment


def _params(**values: Any) -> dict[str, Any]:
    return {
        k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items() if v is not None
    }


# --- the calls: each endpoint described once, for the sync and the async client -----------


@dataclass(frozen=True)
class Call(Generic[J]):
    """One Admin API request below the realm, and the JSON kind its answer must have (``None``:
    no answer is read). A write (any method but GET) is sent once, never retried after a
    timeout: it may have happened. A create's answer is the new id, read from the ``Location``
    header, which must point into the ``created`` collection of the realm."""

    shape: type[J]
    path: str
    role: str  # the realm-management role it needs (named in a 403's message)
    params: dict[str, Any] | None = None
    method: str = "GET"
    body: Any = None  # sent as JSON
    created: str | None = None  # e.g. "/users": the collection a create's Location points into
    read: Callable[[Reply], Any] | None = None  # makes the result itself from a success
    explain: Callable[[AdminAPIError], AdminAPIError] | None = None  # a clearer error, if any

    def __post_init__(self) -> None:
        if self.body is not None:
            refuse_non_json(self.body)

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


def users(
    *,
    search: str | None = None,
    first: int = 0,
    max: int = 100,
    brief: bool = False,
    **filters: Any,
) -> Call[list[UserRepresentation]]:
    """One page of users (``search`` matches username, email, first and last name)."""
    params = _params(
        search=search or None, first=first, max=max, briefRepresentation=brief, **filters
    )
    return Call(list[UserRepresentation], realm_path("users"), "view-users", params)


def users_count(*, search: str | None = None, **filters: Any) -> Call[int]:
    params = _params(search=search or None, **filters)
    return Call(int, realm_path("users", "count"), "view-users", params)


def user(user_id: str) -> Call[UserRepresentation]:
    return Call(UserRepresentation, realm_path("users", user_id), "view-users")


def groups(
    *, search: str | None = None, first: int = 0, max: int = 100
) -> Call[list[GroupRepresentation]]:
    params = _params(search=search or None, first=first, max=max)
    return Call(list[GroupRepresentation], realm_path("groups"), "query-groups", params)


def group_members(
    group_id: str, *, first: int = 0, max: int = 100
) -> Call[list[UserRepresentation]]:
    path = realm_path("groups", group_id, "members")
    return Call(list[UserRepresentation], path, "view-users", _params(first=first, max=max))


def realm_roles(*, search: str | None = None) -> Call[list[RoleRepresentation]]:
    params = _params(search=search or None)
    return Call(list[RoleRepresentation], realm_path("roles"), "view-realm", params)


def clients(*, client_id: str | None = None) -> Call[list[ClientRepresentation]]:
    path = realm_path("clients")
    return Call(list[ClientRepresentation], path, "view-clients", _params(clientId=client_id))


def realm() -> Call[dict[str, Any]]:
    return Call(dict[str, Any], "", "view-realm")


def get(path: str, **params: Any) -> Call[Any]:
    """GET any path below the realm, e.g. ``get("users/profile")``. ``path`` is sent as
    written (quote ids with ``realm_path``); ``params`` become the query string."""
    path = "/" + path.strip("/") if path.strip("/") else ""
    for segment in path.split("/")[1:]:
        _refuse_climbing(segment)
    resource = path.strip("/").split("/", 1)[0]
    return Call(object, path, ROLES_BY_RESOURCE.get(resource, "view-realm"), _params(**params))


# --- the writes: sent once (see Call), each needing manage-users ---------------------------

MANAGE_USERS = "manage-users"
NOT_RETRIED = (
    "; a write is never retried automatically: it may have been applied, so check (e.g. "
    "find_user) before repeating it"
)


def create_user(representation: UserRepresentation) -> Call[str]:
    """Create a user; the answer is its id. Passwords in ``credentials`` are held masked; better:
    create the user, then ``set_password``."""
    body = _user_body(representation, creating=True)
    return Call(str, realm_path("users"), MANAGE_USERS, method="POST", body=body, created="/users")


def update_user(user_id: str, representation: UserRepresentation) -> Call[None]:
    body = _user_body(representation, creating=False)
    return Call(type(None), realm_path("users", user_id), MANAGE_USERS, method="PUT", body=body)


def delete_user(user_id: str) -> Call[None]:
    return Call(type(None), realm_path("users", user_id), MANAGE_USERS, method="DELETE")


def set_password(user_id: str, password: str, *, temporary: bool = False) -> Call[None]:
    """Set the user's password (``temporary``: to be changed at the next login)."""
    body = {"type": "password", "value": masked_password(password), "temporary": bool(temporary)}
    path = realm_path("users", user_id, "reset-password")
    return Call(type(None), path, MANAGE_USERS, method="PUT", body=body)


def user_groups(user_id: str) -> Call[list[GroupRepresentation]]:
    return Call(list[GroupRepresentation], realm_path("users", user_id, "groups"), "view-users")


def add_user_to_group(user_id: str, group_id: str) -> Call[None]:
    path = realm_path("users", user_id, "groups", group_id)
    return Call(type(None), path, MANAGE_USERS, method="PUT")


def remove_user_from_group(user_id: str, group_id: str) -> Call[None]:
    path = realm_path("users", user_id, "groups", group_id)
    return Call(type(None), path, MANAGE_USERS, method="DELETE")


def user_realm_roles(user_id: str) -> Call[list[RoleRepresentation]]:
    path = realm_path("users", user_id, "role-mappings", "realm")
    return Call(list[RoleRepresentation], path, "view-users")


def create_group(name: str, *, parent_id: str | None = None) -> Call[str]:
    """Create a top-level group, or a subgroup of ``parent_id``; the answer is its id."""
    body = {"name": required_text(name, "a group name")}
    path = realm_path("groups", *([] if parent_id is None else [parent_id, "children"]))
    return Call(str, path, MANAGE_USERS, method="POST", body=body, created="/groups")


def delete_group(group_id: str) -> Call[None]:
    return Call(type(None), realm_path("groups", group_id), MANAGE_USERS, method="DELETE")


def group_by_path(path: str) -> Call[GroupRepresentation]:
    """The group at ``path``: ``"/staff/editors"``, or a top-level group's name."""
    segments = [s for s in required_text(path, "a group path").split("/") if s]
    return Call(GroupRepresentation, realm_path("group-by-path", *segments), "view-users")


def realm_role_mapping(
    method: str, user_id: str, role_names: Iterable[str]
) -> Callable[[list[RoleRepresentation]], Call[None]]:
    """Checks the input now; builds the call once the realm's roles are known: they are given
    by name, and an unknown name is refused (all of them listed) before anything is written."""
    path = realm_path("users", user_id, "role-mappings", "realm")
    names = _role_names(role_names)

    def call(realm_roles: list[RoleRepresentation]) -> Call[None]:
        roles = roles_named(names, realm_roles)
        return Call(type(None), path, MANAGE_USERS, method=method, body=roles)

    return call


def _role_names(role_names: Iterable[str]) -> list[str]:
    return names_listed(role_names, "role_names", of="realm role", each="a role name")


def names_listed(names: Iterable[str], parameter: str, *, of: str, each: str) -> list[str]:
    """The distinct names given, in order: a list (a bare string is a slip), none blank, at
    least one."""
    if isinstance(names, str):
        raise TypeError(f"{parameter} is a list of names: [{names!r}], not {names!r}")
    listed = [required_text(name, each) for name in names]
    if not listed:
        raise ValueError(f"{parameter} is empty: name at least one {of}")
    return list(dict.fromkeys(listed))


def roles_named(
    names: list[str],
    roles: list[RoleRepresentation],
    *,
    unknown_are: str = "Unknown realm roles",
    holder: str = "the realm",
) -> list[Any]:
    """The representations of the roles ``names`` (Keycloak maps roles by id and name); an
    unknown name is refused, all of them listed with the roles there are."""
    by_name = {role.get("name"): role for role in roles}
    unknown = [name for name in names if name not in by_name]
    if unknown:
        raise ValueError(
            f"{unknown_are}: {', '.join(map(repr, unknown))}; {holder} has "
            f"{', '.join(sorted(repr(name) for name in by_name if name)) or 'none'}"
        )
    return [by_name[name] for name in names]


def user_query(*, username: str | None, email: str | None) -> dict[str, Any]:
    """``find_user``'s filters: exact matches of what is given (at least one, none empty)."""
    given = {
        key: value for key, value in (("username", username), ("email", email)) if value is not None
    }
    if not given:
        raise TypeError("find_user needs username= or email=")
    return {key: required_text(value, key) for key, value in given.items()}


def exact_match(
    users: list[UserRepresentation], query: dict[str, Any]
) -> UserRepresentation | None:
    """The user whose every queried field is the one asked for (Keycloak lowercases them)."""
    for user_ in users:
        if all(str(user_.get(k, "")).casefold() == v.casefold() for k, v in query.items()):
            return user_
    return None


def masked_password(password: str) -> Masked:
    if not isinstance(password, str):
        raise TypeError(f"a password is a str, not {kind_of(password)}")
    if not password:
        raise ValueError("the password is empty")
    return Masked(password)


def required_text(value: Any, what: str) -> str:
    """``value`` when it is a non-blank string; else a clear error, before any request."""
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise ValueError(f"{what} must not be empty")
    return value


def _user_body(representation: Any, *, creating: bool) -> dict[str, Any]:
    if not isinstance(representation, Mapping):
        kind = kind_of(representation)
        raise TypeError(f"a user representation is a dict (UserRepresentation), not {kind}")
    body = dict(representation)
    if creating or "username" in body:
        required_text(body.get("username"), "username")
    if "credentials" in body:
        credentials = body["credentials"]
        if not isinstance(credentials, (list, tuple)):
            raise TypeError(f"credentials is a list of dicts, not {kind_of(credentials)}")
        body["credentials"] = [_masked_credential(c) for c in credentials]
    return body


def _masked_credential(credential: Any) -> dict[str, Any]:
    if not isinstance(credential, Mapping):
        raise TypeError(f"a credential is a dict, not {kind_of(credential)}")
    masked = masked_credential_members(credential)
    for key in CREDENTIAL_SECRETS:
        if key in masked and not isinstance(masked[key], str):
            raise TypeError(f"a credential's {key} is a str, not {kind_of(masked[key])}")
    return dict(masked)


def checked_page_size(page_size: int) -> int:
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size!r}")
    return page_size


# --- the answers: a call's result, or the error its status maps to ------------------------


def result(
    call: Call[J], status: int, body: Any, text: str, *, realm: str, location: str | None = None
) -> J:
    """The answer's JSON when it has the call's kind (a create's: the new id from ``location``);
    else the error the table maps it to."""
    context = _context(call, realm)
    if body is None:
        body = text[:500]
    if status >= 300:
        note = NOT_RETRIED if call.is_write else ""
        error = AdminAPIError.from_response(status, body, role=call.role, note=note, **context)
        raise error if call.explain is None else call.explain(error)
    if call.read is not None:
        return cast(
            J, call.read(Reply(call, status, None if body == "" else body, location, realm))
        )
    if call.created is not None:
        return cast(J, created_id(call, status, location, realm))
    if call.shape is type(None):
        return None
    expected = get_origin(call.shape) or call.shape
    if is_typeddict(expected):
        expected = dict
    if isinstance(body, str) or not isinstance(body, expected):
        what = "a body that is not JSON" if isinstance(body, str) else type(body).__name__
        raise AdminAPIError(
            f"Keycloak answered {what} where a JSON {expected.__name__} was expected",
            status=status,
            body=body,
            required_role=call.role,
            **context,
        )
    return cast(J, body)


@dataclass(frozen=True)
class Reply:
    """A successful answer, for a call that makes its result itself (``Call.read``): the JSON
    (or text; None when empty), the ``Location`` header and the realm it came from."""

    call: Call[Any]
    status: int
    body: Any
    location: str | None
    realm: str

    def context(self) -> dict[str, Any]:
        return _context(self.call, self.realm)


def created_id(call: Call[Any], status: int, location: str | None, realm: str) -> str:
    """The new id: the last segment of ``location``, trusted only when the rest of it is the
    realm's collection that the call creates in (``/admin/realms/{realm}/users``...)."""
    collection = f"/admin/realms/{realm}{call.created}"
    parent, _, new_id = urlsplit(location or "").path.rpartition("/")
    new_id = unquote(new_id)
    if unquote(parent).endswith(collection) and new_id.strip() and new_id not in (".", ".."):
        return new_id
    raise AdminAPIError(
        f"Keycloak answered HTTP {status} with a Location that is not in {collection}: "
        f"{location!r}, so the new id is unknown (the write happened)",
        status=status,
        required_role=call.role,
        **_context(call, realm),
    )


def _context(call: Call[Any], realm: str) -> dict[str, Any]:
    return {"method": call.method, "path": f"/admin/realms/{realm}{call.path}"}


def request_options(call: Call[Any], config: ClientConfig) -> dict[str, Any]:
    """How the transport sends ``call`` (sync or async): its URL's query and JSON body, the
    answer's cap, and the errors for Keycloak unreachable or an answer refused."""
    context = _context(call, config.realm)
    note = NOT_RETRIED if call.is_write else ""
    options = {
        "config": config,
        "unavailable": lambda reason: AdminUnavailableError(
            f"cannot reach Keycloak: {reason}{note}",
            status=None,
            required_role=call.role,
            **context,
        ),
        "refused": lambda reason, status: AdminAPIError(
            f"Keycloak {reason}", status=status, required_role=call.role, **context
        ),
        "limit": ADMIN_BODY_LIMIT,
        "params": call.params,
        "headers": {"Accept-Encoding": "gzip"},
    }
    return options if call.body is None else {**options, "json": call.body}
