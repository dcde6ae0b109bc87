"""A small client for Keycloak's Admin REST API, authenticated as the service account."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any, TypedDict
from urllib.parse import quote

import requests

from .auth import ServiceAccountAuth
from .conf import DEFAULT_CLIENT, ClientConfig, get_client_config, on_reset
from .exceptions import (
    AdminAPIError,
    AdminAuthenticationError,
    AdminForbiddenError,
    AdminNotFoundError,
    AdminUnavailableError,
)
from .token_endpoint import network_cause


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


def _drop_sessions() -> None:
    with _sessions_lock:
        for session in _sessions.values():
            session.close()
        _sessions.clear()


on_reset(_drop_sessions)


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
    """``/a/b`` with every segment URL-quoted: an id like ``../../master`` stays one segment."""
    return "".join(f"/{quote(str(segment), safe='')}" for segment in segments)


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
        return self._get(realm_path("users"), params, role="view-users")  # type: ignore[no-any-return]

    def users_count(self, *, search: str | None = None, **filters: Any) -> int:
        return int(
            self._get(
                realm_path("users", "count"),
                _params(search=search or None, **filters),
                role="view-users",
            )
        )

    def user(self, user_id: str) -> UserRepresentation:
        return self._get(realm_path("users", user_id), role="view-users")  # type: ignore[no-any-return]

    def iter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> Iterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
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
        return self._get(realm_path("groups"), params, role="query-groups")  # type: ignore[no-any-return]

    def group_members(
        self, group_id: str, *, first: int = 0, max: int = 100
    ) -> list[UserRepresentation]:
        path = realm_path("groups", group_id, "members")
        return self._get(path, _params(first=first, max=max), role="view-users")  # type: ignore[no-any-return]

    def realm_roles(self, *, search: str | None = None) -> list[RoleRepresentation]:
        return self._get(realm_path("roles"), _params(search=search or None), role="view-realm")  # type: ignore[no-any-return]

    def clients(self, *, client_id: str | None = None) -> list[ClientRepresentation]:
        params = _params(clientId=client_id)
        return self._get(realm_path("clients"), params, role="view-clients")  # type: ignore[no-any-return]

    def realm(self) -> dict[str, Any]:
        return self._get("", role="view-realm")  # type: ignore[no-any-return]

    def get(self, path: str, **params: Any) -> Any:
        """GET any path below the realm, e.g. ``get("users/profile")``. ``path`` is sent as
        written (quote ids with ``realm_path``); ``params`` become the query string."""
        path = "/" + path.strip("/") if path.strip("/") else ""
        if "/../" in f"{path}/" or "/./" in f"{path}/":
            raise ValueError(f"Refusing a path that leaves the realm: {path!r}")
        resource = path.strip("/").split("/", 1)[0]
        return self._get(
            path, _params(**params), role=ROLES_BY_RESOURCE.get(resource, "view-realm")
        )

    # --- transport -----------------------------------------------------------------------

    def _get(self, path: str, params: dict[str, Any] | None = None, *, role: str) -> Any:
        url = f"{self.config.admin_url}{path}"
        shown = f"/admin/realms/{self.config.realm}{path}"
        try:
            response = self.session.get(
                url, params=params, timeout=self.config.timeout, verify=self.config.verify
            )
        except requests.Timeout as exc:
            raise AdminUnavailableError("timed out", status=None, method="GET", path=shown) from exc
        except requests.RequestException as exc:
            raise AdminUnavailableError(
                f"cannot reach Keycloak: {network_cause(exc)}",
                status=None,
                method="GET",
                path=shown,
            ) from exc
        return self._result(response, method="GET", path=shown, role=role)

    @staticmethod
    def _result(response: requests.Response, *, method: str, path: str, role: str) -> Any:
        status = response.status_code
        try:
            body: Any = response.json()
        except ValueError:
            body = response.text[:500]
        context: dict[str, Any] = {"status": status, "method": method, "path": path, "body": body}
        if status < 300 and not isinstance(body, str):
            return body
        if status < 300:
            raise AdminAPIError("Keycloak answered a body that is not JSON", **context)
        detail = body.get("error") or body.get("errorMessage") if isinstance(body, dict) else None
        suffix = f" ({detail})" if detail else ""
        if status == 401:
            raise AdminAuthenticationError(
                f"HTTP 401{suffix}: Keycloak refused the service-account token, even a fresh one",
                **context,
            )
        if status == 403:
            raise AdminForbiddenError(
                f"HTTP 403{suffix}: the service account needs the realm-management role "
                f"'{role}' (Keycloak: Clients > the client > Service accounts roles)",
                required_role=role,
                **context,
            )
        if status == 404:
            raise AdminNotFoundError(f"HTTP 404{suffix}: not found", **context)
        if status >= 500:
            raise AdminUnavailableError(f"HTTP {status}{suffix}: Keycloak server error", **context)
        raise AdminAPIError(f"HTTP {status}{suffix}", **context)
