"""The async API against the real Keycloak: aget_access_token, AsyncKeycloakAdmin, and the
demo's async views served by a real uvicorn process over HTTP."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests

from keycloak_jwt_auth import AdminForbiddenError, AsyncKeycloakAdmin, aget_access_token
from support.realm import realm_users

from .conftest import ROOT, demo_environment, free_port, wait_until_up

pytestmark = pytest.mark.keycloak


@pytest.mark.contract
def test_aget_access_token_is_a_real_service_account_token(real_keycloak: str) -> None:
    token = asyncio.run(aget_access_token())
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["azp"] == "django-service"
    assert claims["iss"] == f"{real_keycloak}/realms/demo"


def test_async_admin_lists_counts_searches_and_pages(real_keycloak: str) -> None:
    demo_users = {u["username"] for u in realm_users()}

    async def main() -> tuple[int, list[Any], list[Any], list[Any]]:
        admin = AsyncKeycloakAdmin()
        return (
            await admin.users_count(),
            await admin.users(search="lovelace", max=100, brief=True),
            await admin.users(first=25, max=10, brief=True),
            [user async for user in admin.aiter_users(page_size=7)],
        )

    count, searched, page, everyone = asyncio.run(main())
    assert count == len(demo_users) == 30
    assert [u["username"] for u in searched] == ["ada.lovelace"]
    assert len(page) == count - 25
    assert demo_users <= {u["username"] for u in everyone} and len(everyone) == count


def test_async_admin_names_the_missing_role(real_keycloak: str) -> None:
    with pytest.raises(AdminForbiddenError) as info:
        asyncio.run(AsyncKeycloakAdmin("no-roles").users())
    assert info.value.required_role == "view-users" and info.value.status == 403


@pytest.fixture(scope="module")
def uvicorn_demo(keycloak_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    env = demo_environment(keycloak_server, tmp_path_factory.mktemp("asgi"))
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "demo_project.asgi:application", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{url}/api/async/token/")
        yield url
    finally:
        server.terminate()
        server.wait(10)


def test_async_views_served_by_uvicorn(uvicorn_demo: str) -> None:
    page = requests.get(f"{uvicorn_demo}/api/async/users/", {"first": 25, "max": 10}, timeout=30)
    assert page.status_code == 200, page.text
    assert page.json()["count"] == 30 and len(page.json()["users"]) == 5
    assert "no-store" in page.headers["Cache-Control"]
    token = requests.get(f"{uvicorn_demo}/api/async/token/", timeout=30).json()
    assert token["client_id"] == "django-service" and token["claims"]["azp"] == "django-service"
    synced = requests.get(f"{uvicorn_demo}/api/users/", {"max": 5}, timeout=30).json()
    assert synced["count"] == 30  # the sync views work under ASGI too
