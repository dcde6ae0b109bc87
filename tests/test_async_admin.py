"""AsyncKeycloakAdmin and HttpxServiceAccountAuth: the sync client's behaviour, as coroutines."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth import (
    AdminAPIError,
    AdminAuthenticationError,
    AdminBadRequestError,
    AdminConflictError,
    AdminForbiddenError,
    AdminNotFoundError,
    AdminUnavailableError,
    AsyncKeycloakAdmin,
    HttpxServiceAccountAuth,
    KeycloakUnavailableError,
    TLSError,
)
from keycloak_jwt_auth.auths.httpx_auth import async_client

from .conftest import ADMIN_URL, token_body, token_calls

Call = Callable[[AsyncKeycloakAdmin], Awaitable[Any]]


@pytest.fixture
def api(token_endpoint: Any) -> Iterator[respx.MockRouter]:
    token_endpoint(token_body("admin-token"), token_body("second-token"))
    with respx.mock(assert_all_called=False) as router:
        yield router


def run(call: Call) -> Any:
    async def main() -> Any:
        return await call(AsyncKeycloakAdmin())

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("call", "path", "params", "answer"),
    [
        (lambda a: a.users(search="ada", first=10, max=5, brief=True), "/users",
         {"search": "ada", "first": "10", "max": "5", "briefRepresentation": "true"}, []),
        (lambda a: a.users_count(search="lo"), "/users/count", {"search": "lo"}, 7),
        (lambda a: a.user("1234"), "/users/1234", {}, {"id": "1234"}),
        (lambda a: a.groups(), "/groups", {"first": "0", "max": "100"}, []),
        (lambda a: a.group_members("g1", max=3), "/groups/g1/members",
         {"first": "0", "max": "3"}, []),
        (lambda a: a.realm_roles(), "/roles", {}, []),
        (lambda a: a.clients(client_id="x"), "/clients", {"clientId": "x"}, []),
        (lambda a: a.realm(), "", {}, {"realm": "demo"}),
        (lambda a: a.get("users/profile", x=1), "/users/profile", {"x": "1"}, {}),
    ],
)  # fmt: skip
def test_every_method_is_a_coroutine_with_the_sync_urls(
    api: respx.MockRouter, call: Call, path: str, params: dict[str, str], answer: Any
) -> None:
    route = api.get(f"{ADMIN_URL}{path}").respond(json=answer)
    assert run(call) == answer
    sent = route.calls.last.request
    assert dict(sent.url.params) == params
    assert sent.headers["Authorization"] == "Bearer admin-token"


def test_aiter_users_pages_until_a_short_page(api: respx.MockRouter) -> None:
    pages = [[{"id": "0"}, {"id": "1"}], [{"id": "2"}]]
    route = api.get(f"{ADMIN_URL}/users").mock(
        side_effect=[httpx.Response(200, json=page) for page in pages]
    )

    async def main() -> list[str]:
        return [u["id"] async for u in AsyncKeycloakAdmin().aiter_users(page_size=2)]

    assert asyncio.run(main()) == ["0", "1", "2"]
    assert [c.request.url.params["first"] for c in route.calls] == ["0", "2"]


@pytest.mark.parametrize(
    ("status", "error", "words"),
    [
        (403, AdminForbiddenError, "realm-management role 'view-users'"),
        (404, AdminNotFoundError, "not found"),
        (502, AdminUnavailableError, "Keycloak server error"),
        (400, AdminBadRequestError, r"HTTP 400 \(bad\)"),
        (409, AdminConflictError, r"HTTP 409 \(bad\)"),
        (418, AdminAPIError, r"HTTP 418 \(bad\)"),
    ],
)
def test_statuses_map_to_the_same_errors(
    api: respx.MockRouter, status: int, error: type[AdminAPIError], words: str
) -> None:
    api.get(f"{ADMIN_URL}/users").respond(status, json={"error": "bad"})
    with pytest.raises(error, match=words) as info:
        run(lambda a: a.users())
    assert type(info.value) is error and info.value.required_role == "view-users"


def test_401_twice_renews_once_then_fails(api: respx.MockRouter, token_endpoint: Any) -> None:
    route = api.get(f"{ADMIN_URL}/users").respond(401)
    with pytest.raises(AdminAuthenticationError):
        run(lambda a: a.users())
    sent = [c.request.headers["Authorization"] for c in route.calls]
    assert sent == ["Bearer admin-token", "Bearer second-token"]


def test_network_failures_are_unavailable_and_not_chained(api: respx.MockRouter) -> None:
    api.get(f"{ADMIN_URL}/users").mock(side_effect=httpx.ConnectError("Connection refused"))
    with pytest.raises(KeycloakUnavailableError, match="cannot reach Keycloak") as info:
        run(lambda a: a.users())
    assert info.value.__cause__ is None and info.value.__context__ is None
    api.get(f"{ADMIN_URL}/users").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(AdminUnavailableError, match="timed out"):
        run(lambda a: a.users())


def test_a_redirect_is_not_followed(api: respx.MockRouter) -> None:
    elsewhere = api.get("https://attacker.test/steal").respond(200, json=[])
    api.get(f"{ADMIN_URL}/users").respond(302, headers={"Location": "https://attacker.test/steal"})
    with pytest.raises(AdminAPIError, match="redirecting to 'https://attacker.test/steal'"):
        run(lambda a: a.users())
    assert not elsewhere.called


def test_html_on_success_and_paths_that_leave_the_realm(api: respx.MockRouter) -> None:
    api.get(f"{ADMIN_URL}/users").respond(200, text="<html>login</html>")
    with pytest.raises(AdminAPIError, match="not JSON"):
        run(lambda a: a.users())
    with pytest.raises(ValueError, match="leaves the realm"):
        run(lambda a: a.get("%2e%2e/master/users"))


def test_a_tls_failure_is_a_tls_error(token_endpoint: Any) -> None:
    token_endpoint(token_body("t"))
    plain = socket.create_server(("127.0.0.1", 0))  # accepts, and speaks no TLS
    threading.Thread(target=lambda: plain.accept()[0].sendall(b"HTTP/1.1 400 x\r\n\r\n")).start()
    custom = {
        **settings.KEYCLOAK_JWT_AUTH,
        "SERVER_URL": f"https://127.0.0.1:{plain.getsockname()[1]}",
        "TOKEN_ENDPOINT": "https://keycloak.test/realms/demo/protocol/openid-connect/token",
    }
    try:
        with (
            override_settings(KEYCLOAK_JWT_AUTH=custom),
            pytest.raises(TLSError, match="SERVER_URL"),
        ):
            run(lambda a: a.users())
    finally:
        plain.close()


def test_one_pooled_client_per_loop() -> None:
    async def mine() -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
        return async_client("default"), async_client("default")

    first_a, first_b = asyncio.run(mine())
    second, _ = asyncio.run(mine())
    assert first_a is first_b  # pooled within a loop
    assert second is not first_a  # another loop never reuses its connections
    assert repr(AsyncKeycloakAdmin()) == "AsyncKeycloakAdmin(client='default', realm='demo')"


API = "https://api.test/resource"


def test_httpx_auth_in_sync_and_async_clients(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("first"), token_body("fresh"))
    with respx.mock() as router:
        route = router.get(API).mock(
            side_effect=[httpx.Response(401), httpx.Response(200), httpx.Response(200)]
        )
        with httpx.Client(auth=HttpxServiceAccountAuth()) as client:
            assert client.get(API).status_code == 200  # after one retry

        async def main() -> int:
            async with httpx.AsyncClient(auth=HttpxServiceAccountAuth()) as client:
                return (await client.get(API)).status_code

        assert asyncio.run(main()) == 200
    sent = [c.request.headers["Authorization"] for c in route.calls]
    assert sent == ["Bearer first", "Bearer fresh", "Bearer fresh"]
    assert len(token_calls(mocked)) == 2


def test_httpx_auth_never_retries_a_401_from_elsewhere(token_endpoint: Any) -> None:
    mocked = token_endpoint(token_body("tok"), token_body("never"))
    with respx.mock() as router:
        router.get(API).respond(302, headers={"Location": "https://attacker.test/x"})
        elsewhere = router.get("https://attacker.test/x").respond(401)

        async def main() -> int:
            async with httpx.AsyncClient(
                auth=HttpxServiceAccountAuth(), follow_redirects=True
            ) as client:
                return (await client.get(API)).status_code

        assert asyncio.run(main()) == 401
    assert elsewhere.call_count == 1
    assert "Authorization" not in elsewhere.calls.last.request.headers
    assert len(token_calls(mocked)) == 1


def test_without_httpx_the_package_imports_and_async_http_says_what_to_install() -> None:
    script = (
        "import sys; sys.modules['httpx'] = None\n"
        "import django, os; os.environ['DJANGO_SETTINGS_MODULE'] = 'tests.settings'\n"
        "django.setup()\n"
        "from keycloak_jwt_auth import AsyncKeycloakAdmin, get_access_token\n"
        "from keycloak_jwt_auth.exceptions import ConfigurationError\n"
        "try:\n    AsyncKeycloakAdmin()\nexcept ConfigurationError as exc:\n    print(exc)\n"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(root)}, timeout=60,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "pip install 'keycloak-jwt-auth[async]'" in out.stdout
