"""``KeycloakAdmin`` and ``AsyncKeycloakAdmin``, authenticated as the service account.

Their methods are declared once, in ``AdminCalls``: one ``Endpoint`` per Admin API call, naming
its ``Call`` builder. Read from a ``KeycloakAdmin`` an endpoint is a method that sends the call;
from an ``AsyncKeycloakAdmin``, a coroutine method. Each client only says how it sends a call.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator
from types import MethodType
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, cast, get_args, overload

import requests

from keycloak_jwt_auth.admin import calls, support_calls
from keycloak_jwt_auth.admin.calls import (
    Call,
    checked_page_size,
    exact_match,
    realm_role_mapping,
    request_options,
    result,
    user_query,
)
from keycloak_jwt_auth.admin.credentials import masked_arguments, secret_positions
from keycloak_jwt_auth.admin.representations import UserRepresentation
from keycloak_jwt_auth.admin.support_calls import Steps
from keycloak_jwt_auth.auths.requests_auth import ServiceAccountAuth
from keycloak_jwt_auth.clients import clients as configured_clients
from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.http.transport import exchange, json_body
from keycloak_jwt_auth.metrics import record_admin_request
from keycloak_jwt_auth.settings import (
    DEFAULT_CLIENT,
    ClientConfig,
)

J = TypeVar("J")
P = ParamSpec("P")
Build = Callable[..., "Call[Any] | Steps[Any]"]


def admin_session(client: str) -> requests.Session:
    """The client's pooled Admin API session (per process: a forked worker gets its own)."""

    def build() -> requests.Session:
        session = requests.Session()
        session.auth = ServiceAccountAuth(client)
        session.headers["Accept"] = "application/json"
        return session

    return configured_clients[client].keep("admin_session", build)


# --- one declaration per call, a method on each client ---------------------------------------


class Endpoint(Generic[P, J]):
    """One Admin API call, declared by its ``Call`` builder (or by its ``Steps``, for a call that
    needs several requests). The overloads give each client's method its real signature (the
    builder's parameters; the call's answer, or a coroutine of it); each client class gets its
    method made once, named and documented as the builder."""

    @overload
    def __init__(self, build: Callable[P, Call[J]]) -> None: ...
    @overload
    def __init__(self, build: Callable[P, Steps[J]]) -> None: ...
    def __init__(self, build: Callable[P, Call[J] | Steps[J]]) -> None:
        self.build, self.name = build, build.__name__
        self.methods: dict[type, Callable[..., Any]] = {}

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(
        self, admin: None, owner: type[KeycloakAdmin]
    ) -> Callable[Concatenate[KeycloakAdmin, P], J]: ...
    @overload
    def __get__(
        self, admin: None, owner: type[AsyncKeycloakAdmin]
    ) -> Callable[Concatenate[AsyncKeycloakAdmin, P], Coroutine[Any, Any, J]]: ...
    @overload
    def __get__(self, admin: KeycloakAdmin, owner: type | None = None) -> Callable[P, J]: ...
    @overload
    def __get__(
        self, admin: AsyncKeycloakAdmin, owner: type | None = None
    ) -> Callable[P, Coroutine[Any, Any, J]]: ...
    def __get__(self, admin: object, owner: type | None = None) -> Callable[..., Any]:
        owner = type(admin) if owner is None else owner
        method = self.methods.get(owner)
        if method is None:
            method = self.methods[owner] = self._method_for(owner)
        return method if admin is None else MethodType(method, admin)

    def _method_for(self, owner: type) -> Callable[..., Any]:
        make = _async if issubclass(owner, AsyncKeycloakAdmin) else _sync
        method = functools.update_wrapper(
            make(self.build, secret_positions(self.build)), self.build
        )
        method.__name__, method.__qualname__ = self.name, f"{owner.__qualname__}.{self.name}"
        cast(Any, method).__signature__ = _signature(self.build)
        return method


Secrets = tuple[int | None, str | None]


def _sync(build: Build, secrets: Secrets) -> Callable[..., Any]:
    def method(self: KeycloakAdmin, /, *args: Any, **kwargs: Any) -> Any:
        # First of all: from here on no frame (this one included) holds a plain password.
        args, kwargs = masked_arguments(args, kwargs, secrets)
        plan = build(*args, **kwargs)
        if isinstance(plan, Call):
            return self._run(plan)
        answer = None
        while True:  # Steps: send each call it yields, give it the answer
            try:
                call = plan.send(answer)
            except StopIteration as done:
                return done.value
            answer = self._run(call)

    return method


def _async(build: Build, secrets: Secrets) -> Callable[..., Any]:
    async def method(self: AsyncKeycloakAdmin, /, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = masked_arguments(args, kwargs, secrets)  # as in _sync
        plan = build(*args, **kwargs)
        if isinstance(plan, Call):
            return await self._run(plan)
        answer = None
        while True:  # as in _sync
            try:
                call = plan.send(answer)
            except StopIteration as done:
                return done.value
            answer = await self._run(call)

    return method


def _signature(build: Build) -> inspect.Signature:
    """The builder's parameters after ``self``, and its call's answer: what ``help()`` and
    editors that inspect objects show."""
    signature = inspect.signature(build, eval_str=True)
    answer = get_args(signature.return_annotation)[-1]  # Call[answer] or Steps[answer]
    self_ = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    return signature.replace(
        parameters=[self_, *signature.parameters.values()],
        return_annotation=None if answer is type(None) else answer,
    )


class AdminCalls:
    """Every Admin API call of both clients, once: a method name and its ``Call`` builder."""

    users = Endpoint(calls.users)
    users_count = Endpoint(calls.users_count)
    user = Endpoint(calls.user)
    groups = Endpoint(calls.groups)
    group_members = Endpoint(calls.group_members)
    realm_roles = Endpoint(calls.realm_roles)
    clients = Endpoint(calls.clients)
    realm = Endpoint(calls.realm)
    get = Endpoint(calls.get)
    create_user = Endpoint(calls.create_user)
    update_user = Endpoint(calls.update_user)
    delete_user = Endpoint(calls.delete_user)
    set_password = Endpoint(calls.set_password)
    user_groups = Endpoint(calls.user_groups)
    add_user_to_group = Endpoint(calls.add_user_to_group)
    remove_user_from_group = Endpoint(calls.remove_user_from_group)
    user_realm_roles = Endpoint(calls.user_realm_roles)
    create_group = Endpoint(calls.create_group)
    delete_group = Endpoint(calls.delete_group)
    group_by_path = Endpoint(calls.group_by_path)
    find_client = Endpoint(support_calls.find_client)
    client_roles = Endpoint(support_calls.client_roles)
    user_client_roles = Endpoint(support_calls.user_client_roles)
    assign_client_roles = Endpoint(support_calls.assign_client_roles)
    remove_client_roles = Endpoint(support_calls.remove_client_roles)
    organizations = Endpoint(support_calls.organizations)
    create_organization = Endpoint(support_calls.create_organization)
    delete_organization = Endpoint(support_calls.delete_organization)
    organization_members = Endpoint(support_calls.organization_members)
    add_organization_member = Endpoint(support_calls.add_organization_member)
    remove_organization_member = Endpoint(support_calls.remove_organization_member)
    user_organizations = Endpoint(support_calls.user_organizations)
    user_sessions = Endpoint(support_calls.user_sessions)
    logout_user = Endpoint(support_calls.logout_user)
    execute_actions_email = Endpoint(support_calls.execute_actions_email)
    request = Endpoint(support_calls.request)


# --- the clients: how each sends a call, and the methods that compose several ---------------


class KeycloakAdmin(AdminCalls):
    """Admin REST API of the client's realm: ``{SERVER_URL}/admin/realms/{REALM}/...``."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        self.client = client
        self.config: ClientConfig = get_client_config(client)
        self.session = admin_session(client)

    def __repr__(self) -> str:
        return f"KeycloakAdmin(client={self.client!r}, realm={self.config.realm!r})"

    def find_user(
        self, *, username: str | None = None, email: str | None = None
    ) -> UserRepresentation | None:
        """The user with exactly this username and/or email, or None."""
        query = user_query(username=username, email=email)
        return exact_match(self.users(**query, exact=True), query)

    def assign_realm_roles(self, user_id: str, role_names: Iterable[str]) -> None:
        """Grant realm roles, by name (looked up first: an unknown name writes nothing)."""
        call = realm_role_mapping("POST", user_id, role_names)
        self._run(call(self.realm_roles()))

    def remove_realm_roles(self, user_id: str, role_names: Iterable[str]) -> None:
        call = realm_role_mapping("DELETE", user_id, role_names)
        self._run(call(self.realm_roles()))

    def iter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> Iterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
        first, page_size = 0, checked_page_size(page_size)
        while True:
            page = self.users(search=search, first=first, max=page_size, brief=brief)
            yield from page
            if len(page) < page_size:
                return
            first += page_size

    def _run(self, call: Call[J]) -> J:
        url, options = f"{self.config.admin_url}{call.path}", request_options(call, self.config)
        response = exchange(self.session, call.method, url, **options)
        record_admin_request(self.client, call.method, response.status_code)
        body, location = json_body(response), response.headers.get("Location")
        status, realm = response.status_code, self.config.realm
        return result(call, status, body, response.text, realm=realm, location=location)


class AsyncKeycloakAdmin(AdminCalls):
    """``KeycloakAdmin`` for async code: the same methods as coroutines (``aiter_users`` an
    async iterator), over one pooled ``httpx.AsyncClient`` per client, event loop and process.
    Needs the ``async`` extra: ``pip install 'keycloak-jwt-auth[async]'``."""

    def __init__(self, client: str = DEFAULT_CLIENT) -> None:
        from keycloak_jwt_auth.auths import httpx_auth
        from keycloak_jwt_auth.http import (
            async_transport as async_http,  # raises ConfigurationError without httpx
        )

        self._http = async_http
        self._auth = httpx_auth
        self.client = client
        self.config: ClientConfig = get_client_config(client)

    def __repr__(self) -> str:
        return f"AsyncKeycloakAdmin(client={self.client!r}, realm={self.config.realm!r})"

    async def find_user(
        self, *, username: str | None = None, email: str | None = None
    ) -> UserRepresentation | None:
        query = user_query(username=username, email=email)
        return exact_match(await self.users(**query, exact=True), query)

    async def assign_realm_roles(self, user_id: str, role_names: Iterable[str]) -> None:
        call = realm_role_mapping("POST", user_id, role_names)
        await self._run(call(await self.realm_roles()))

    async def remove_realm_roles(self, user_id: str, role_names: Iterable[str]) -> None:
        call = realm_role_mapping("DELETE", user_id, role_names)
        await self._run(call(await self.realm_roles()))

    async def aiter_users(
        self, *, search: str | None = None, page_size: int = 100, brief: bool = True
    ) -> AsyncIterator[UserRepresentation]:
        """Every user, page by page; stops after the first page shorter than ``page_size``."""
        first, page_size = 0, checked_page_size(page_size)
        while True:
            page = await self.users(search=search, first=first, max=page_size, brief=brief)
            for user_ in page:
                yield user_
            if len(page) < page_size:
                return
            first += page_size

    async def _run(self, call: Call[J]) -> J:
        url, options = f"{self.config.admin_url}{call.path}", request_options(call, self.config)
        client = self._auth.async_client(self.client)
        response = await self._http.aexchange(client, call.method, url, **options)
        record_admin_request(self.client, call.method, response.status_code)
        body, location = self._http.json_body(response), response.headers.get("Location")
        status, realm = response.status_code, self.config.realm
        return result(call, status, body, response.text, realm=realm, location=location)
