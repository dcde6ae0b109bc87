"""A small client for Keycloak's Admin REST API, authenticated as the service account."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, TypedDict, TypeVar, cast, get_origin, is_typeddict
from urllib.parse import quote, unquote

import requests
from django.core.signals import setting_changed
from django.dispatch import receiver

from .auth import ServiceAccountAuth
from .conf import CLIENT_SETTINGS, DEFAULT_CLIENT, ClientConfig, get_client_config
from .exceptions import AdminAPIError, AdminUnavailableError
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


class KeycloakAdmin:
    """Admin REST API of the client's realm: ``{SERVER_URL}/admin/realms/{REALM}/...``."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client
        self.config: ClientConfig = get_client_config(client)
        self.session = admin_session(client)

    def __repr__(self) -> str:
        return f"KeycloakAdmin(client={self.client!r}, realm={self.config.realm!r})"

    # --- users ---------------------------------------------------------------------------

    def users(
        self,
        *,
        search: str | None = None,
        first: int = 0,
        max: int = 100,
        brief: bool = False,
        **filters: Any,
    ) -> list[UserRepresentation]:
        """One page of users (``search`` matches username, email, first and last name)."""
        params = _params(
            search=search or None, first=first, max=max, briefRepresentation=brief, **filters
        )
        return self._get(list[UserRepresentation], realm_path("users"), params, role="view-users")

    def users_count(self, *, search: str | None = None, **filters: Any) -> int:
        params = _params(search=search or None, **filters)
        return self._get(int, realm_path("users", "count"), params, role="view-users")

    def user(self, user_id: str) -> UserRepresentation:
        return self._get(UserRepresentation, realm_path("users", user_id), role="view-users")

    def iter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> Iterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size!r}")
        first = 0
        while True:
            page = self.users(search=search, first=first, max=page_size, brief=brief)
            yield from page
            if len(page) < page_size:
                return
            first += page_size

    # --- groups, roles, clients, realm ----------------------------------------------------

    def groups(
        self, *, search: str | None = None, first: int = 0, max: int = 100
    ) -> list[GroupRepresentation]:
        params = _params(search=search or None, first=first, max=max)
        return self._get(
            list[GroupRepresentation], realm_path("groups"), params, role="query-groups"
        )

    def group_members(
        self, group_id: str, *, first: int = 0, max: int = 100
    ) -> list[UserRepresentation]:
        path = realm_path("groups", group_id, "members")
        params = _params(first=first, max=max)
        return self._get(list[UserRepresentation], path, params, role="view-users")

    def realm_roles(self, *, search: str | None = None) -> list[RoleRepresentation]:
        params = _params(search=search or None)
        return self._get(list[RoleRepresentation], realm_path("roles"), params, role="view-realm")

    def clients(self, *, client_id: str | None = None) -> list[ClientRepresentation]:
        params = _params(clientId=client_id)
        path = realm_path("clients")
        return self._get(list[ClientRepresentation], path, params, role="view-clients")

    def realm(self) -> dict[str, Any]:
        return self._get(dict[str, Any], "", role="view-realm")

    def get(self, path: str, **params: Any) -> Any:
        """GET any path below the realm, e.g. ``get("users/profile")``. ``path`` is sent as
        written (quote ids with ``realm_path``); ``params`` become the query string."""
        path = "/" + path.strip("/") if path.strip("/") else ""
        for segment in path.split("/")[1:]:
            _refuse_climbing(segment)
        resource = path.strip("/").split("/", 1)[0]
        role = ROLES_BY_RESOURCE.get(resource, "view-realm")
        return self._get(object, path, _params(**params), role=role)

    # --- one call -------------------------------------------------------------------------

    def _get(
        self, shape: type[J], path: str, params: dict[str, Any] | None = None, *, role: str
    ) -> J:
        """GET ``path`` below the realm; the JSON answer must have ``shape`` (checked at its
        top level: a list, an object, a number)."""
        shown = f"/admin/realms/{self.config.realm}{path}"
        context: dict[str, Any] = {"method": "GET", "path": shown}
        response = exchange(
            self.session,
            "GET",
            f"{self.config.admin_url}{path}",
            config=self.config,
            unavailable=lambda reason: AdminUnavailableError(
                f"cannot reach Keycloak: {reason}", status=None, required_role=role, **context
            ),
            refused=lambda reason, status: AdminAPIError(
                f"Keycloak {reason}", status=status, required_role=role, **context
            ),
            limit=ADMIN_BODY_LIMIT,
            params=params,
            headers={"Accept-Encoding": "gzip"},
        )
        status, body = response.status_code, json_body(response)
        if body is None:
            body = response.text[:500]
        if status >= 300:
            raise AdminAPIError.from_response(status, body, role=role, **context)
        expected = get_origin(shape) or shape
        if is_typeddict(expected):
            expected = dict
        if isinstance(body, str) or not isinstance(body, expected):
            what = "a body that is not JSON" if isinstance(body, str) else type(body).__name__
            raise AdminAPIError(
                f"Keycloak answered {what} where a JSON {expected.__name__} was expected",
                status=status,
                body=body,
                **context,
            )
        return cast(J, body)
