"""``clients[name]``: one place for what a client name owns, reset on a settings change and
after a fork."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import httpx
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth.admin.clients import admin_session
from keycloak_jwt_auth.auths.httpx_auth import async_client
from keycloak_jwt_auth.clients import clients, get_client_config, get_token_manager

from .test_manager import run_in_fork

NAMED = {**settings.KEYCLOAK_JWT_AUTH, "CLIENTS": {"reports": {"CLIENT_ID": "reports"}}}


def test_each_part_is_built_once_per_name_even_when_threads_race() -> None:
    with override_settings(KEYCLOAK_JWT_AUTH=NAMED):
        seen: list[Any] = []
        start = threading.Barrier(16)

        def race() -> None:
            start.wait()
            seen.append(clients["reports"].manager)

        threads = [threading.Thread(target=race) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(manager) for manager in seen}) == 1
        assert get_token_manager("reports") is seen[0]
        assert get_token_manager("default") is not seen[0]
        assert seen[0].config is get_client_config("reports")
        assert seen[0].authentication is clients["reports"].authentication


def test_a_settings_change_reaches_every_part() -> None:
    manager, session = get_token_manager(), admin_session("default")
    config = get_client_config()
    with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "TIMEOUT": 3}):
        assert get_client_config().timeout == 3 != config.timeout
        assert get_token_manager() is not manager
        assert admin_session("default") is not session
    assert get_token_manager() is not manager  # and back again when the override ends


def test_a_verify_change_reaches_the_pooled_async_client() -> None:
    async def pooled() -> tuple[httpx.AsyncClient, bool]:
        client = async_client("default")
        return client, client is async_client("default")  # pooled within the loop

    async def main() -> None:
        with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "VERIFY": False}):
            lax, pooled_lax = await pooled()
            assert pooled_lax and get_client_config().verify is False
        strict, _ = await pooled()
        assert strict is not lax  # the same loop builds a new client from the new settings
        assert get_client_config().verify is True
        await strict.aclose()
        await lax.aclose()

    asyncio.run(main())


def test_a_forked_child_keeps_config_and_manager_and_rebuilds_sessions() -> None:
    owner = clients["default"]
    manager, session, config = owner.manager, admin_session("default"), owner.config

    def child() -> str:
        assert clients["default"] is owner and owner.config is config
        assert owner.manager is manager and owner.manager._flight is None
        assert admin_session("default") is not session  # no keep-alive socket shared
        return "ok"

    assert run_in_fork(child) == "ok"
    assert admin_session("default") is session  # the parent's stays


def test_published_keys_leave_out_unusable_clients() -> None:
    broken = {**settings.KEYCLOAK_JWT_AUTH, "CLIENTS": {"broken": {"REALM": None}}}
    with override_settings(KEYCLOAK_JWT_AUTH=broken):
        assert clients.published_keys() == []  # no key client, and the broken one is skipped
