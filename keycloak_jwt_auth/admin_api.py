"""A small client for Keycloak's Admin REST API, authenticated as the service account."""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import (
    Any,
    Concatenate,
    Generic,
    ParamSpec,
    TypedDict,
    TypeVar,
    cast,
    get_origin,
    is_typeddict,
)
from urllib.parse import quote, unquote

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver

from .auth import ServiceAccountAuth
from .conf import CLIENT_SETTINGS, DEFAULT_CLIENT, ClientConfig, get_client_config
from .exceptions import AdminAPIError, AdminUnavailableError
from .metrics import record_admin_request
from .transport import ADMIN_BODY_LIMIT, exchange, json_body

J = TypeVar("J")


class UserRepresentation(TypedDict, total=False):
    id: str
    username: str
    email: str
    firstName: str
    lastName: str
    enabled: bool
    emailVerified: bool
    createdTimestamp: int
    attributes: dict[str, list[str]]


class GroupRepresentation(TypedDict, total=False):
    id: str
    name: str
    path: str
    subGroupCount: int
    subGroups: list[GroupRepresentation]


class RoleRepresentation(TypedDict, total=False):
    id: str
    name: str
    description: str
    composite: bool
    clientRole: bool
    containerId: str


class ClientRepresentation(TypedDict, total=False):
    id: str
    clientId: str
    name: str
    enabled: bool
    publicClient: bool
    serviceAccountsEnabled: bool


# The realm-management role each part of the Admin API needs (for 403 messages).
ROLES_BY_RESOURCE = {
    "users": "view-users",
    "groups": "query-groups",
    "roles": "view-realm",
    "clients": "view-clients",
    "events": "view-events",
    "": "view-realm",
}

_sessions: dict[tuple[str, int], requests.Session] = {}
_sessions_lock = threading.Lock()


@receiver(setting_changed)
def _drop_sessions(*, setting: str, **kwargs: object) -> None:
    if setting in CLIENT_SETTINGS:
        with _sessions_lock:
            for session in _sessions.values():
                session.close()
            _sessions.clear()


def admin_session(client: str) -> requests.Session:
    """One pooled session per client and process (a forked worker gets its own sockets)."""
    key = (client, os.getpid())
    session = _sessions.get(key)
    if session is None:
        with _sessions_lock:
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = requests.Session()
                session.auth = ServiceAccountAuth(client)
                session.headers["Accept"] = "application/json"
    return session


def realm_path(*segments: str) -> str:
    """``/a/b`` with every segment URL-quoted: an id like ``../../master`` stays one segment,
    and a segment that would still climb (``..``, ``.``) is refused."""
    for segment in segments:
        _refuse_climbing(str(segment))
    return "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


def _refuse_climbing(segment: str) -> None:
    # Servers decode %2e and may treat a backslash as a slash: judge the decoded segment.
    decoded = unquote(segment)
    if decoded.strip() in (".", "..") or "\\" in decoded:
        raise ValueError(f"Refusing a path segment that leaves the realm: {segment!r}")


def _params(**values: Any) -> dict[str, Any]:
    return {
        k: str(v).lower() if isinstance(v, bool) else v for k, v in values.items() if v is not None
    }


# --- the calls: each endpoint described once, for the sync and the async client -----------


@dataclass(frozen=True)
class Call(Generic[J]):
    """One Admin API request below the realm, and the JSON kind its answer must have."""

    shape: type[J]
    path: str
    role: str  # the realm-management role it needs (named in a 403's message)
    params: dict[str, Any] | None = None


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


def _page_size(page_size: int) -> int:
    if page_size < 1:
        raise ValueError(f"page_size must be at least 1, not {page_size!r}")
    return page_size


def result(call: Call[J], status: int, body: Any, text: str, *, realm: str) -> J:
    """The answer's JSON when it has the call's kind; else the error the table maps it to."""
    context: dict[str, Any] = {"method": "GET", "path": f"/admin/realms/{realm}{call.path}"}
    if body is None:
        body = text[:500]
    if status >= 300:
        raise AdminAPIError.from_response(status, body, role=call.role, **context)
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


def request_options(call: Call[Any], config: ClientConfig) -> dict[str, Any]:
    """How the transport sends ``call`` (sync or async): its URL's query, the answer's cap, and
    the errors for Keycloak unreachable or an answer refused."""
    context: dict[str, Any] = {"method": "GET", "path": f"/admin/realms/{config.realm}{call.path}"}
    return {
        "config": config,
        "unavailable": lambda reason: AdminUnavailableError(
            f"cannot reach Keycloak: {reason}", status=None, required_role=call.role, **context
        ),
        "refused": lambda reason, status: AdminAPIError(
            f"Keycloak {reason}", status=status, required_role=call.role, **context
        ),
        "limit": ADMIN_BODY_LIMIT,
        "params": call.params,
        "headers": {"Accept-Encoding": "gzip"},
    }


# --- the clients ---------------------------------------------------------------------------

P = ParamSpec("P")


def _sync(build: Callable[P, Call[J]]) -> Callable[Concatenate[KeycloakAdmin, P], J]:
    @functools.wraps(build)
    def method(self: KeycloakAdmin, /, *args: P.args, **kwargs: P.kwargs) -> J:
        return self._run(build(*args, **kwargs))

    return method


def _async(
    build: Callable[P, Call[J]],
) -> Callable[Concatenate[AsyncKeycloakAdmin, P], Coroutine[Any, Any, J]]:
    @functools.wraps(build)
    async def method(self: AsyncKeycloakAdmin, /, *args: P.args, **kwargs: P.kwargs) -> J:
        return await self._run(build(*args, **kwargs))

    return method


class KeycloakAdmin:
    """Admin REST API of the client's realm: ``{SERVER_URL}/admin/realms/{REALM}/...``."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client
        self.config: ClientConfig = get_client_config(client)
        self.session = admin_session(client)

    def __repr__(self) -> str:
        return f"KeycloakAdmin(client={self.client!r}, realm={self.config.realm!r})"

    users = _sync(users)
    users_count = _sync(users_count)
    user = _sync(user)
    groups = _sync(groups)
    group_members = _sync(group_members)
    realm_roles = _sync(realm_roles)
    clients = _sync(clients)
    realm = _sync(realm)
    get = _sync(get)

    def iter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> Iterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
        first, page_size = 0, _page_size(page_size)
        while True:
            page = self.users(search=search, first=first, max=page_size, brief=brief)
            yield from page
            if len(page) < page_size:
                return
            first += page_size

    def _run(self, call: Call[J]) -> J:
        url, options = f"{self.config.admin_url}{call.path}", request_options(call, self.config)
        response = exchange(self.session, "GET", url, **options)
        record_admin_request(self.client, "GET", response.status_code)
        body = json_body(response)
        return result(call, response.status_code, body, response.text, realm=self.config.realm)


class AsyncKeycloakAdmin:
    """``KeycloakAdmin`` for async code: the same methods as coroutines (``aiter_users`` an
    async iterator), over one pooled ``httpx.AsyncClient`` per client, event loop and process.
    Needs the ``async`` extra: ``pip install keycloak-jwt-auth[async]``."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        from . import async_http  # raises ConfigurationError without httpx

        self._http = async_http
        self.client = client
        self.config: ClientConfig = get_client_config(client)

    def __repr__(self) -> str:
        return f"AsyncKeycloakAdmin(client={self.client!r}, realm={self.config.realm!r})"

    users = _async(users)
    users_count = _async(users_count)
    user = _async(user)
    groups = _async(groups)
    group_members = _async(group_members)
    realm_roles = _async(realm_roles)
    clients = _async(clients)
    realm = _async(realm)
    get = _async(get)

    async def aiter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> AsyncIterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
        first, page_size = 0, _page_size(page_size)
        while True:
            page = await self.users(search=search, first=first, max=page_size, brief=brief)
            for user_ in page:
                yield user_
            if len(page) < page_size:
                return
            first += page_size

    async def _run(self, call: Call[J]) -> J:
        url, options = f"{self.config.admin_url}{call.path}", request_options(call, self.config)
        client = self._http.async_client(self.client)
        response = await self._http.aexchange(client, "GET", url, **options)
        record_admin_request(self.client, "GET", response.status_code)
        body = self._http.json_body(response)
        return result(call, response.status_code, body, response.text, realm=self.config.realm)
