"""Fixtures for tests against the real Keycloak (and Redis) started by the project's scripts.

A server that is not running is started once per test run and stopped at the end. If it
cannot start, the tests fail: they never skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.realm import realm_secrets

ROOT = Path(__file__).resolve().parents[2]
KEYCLOAK_PORT = int(os.environ.get("KEYCLOAK_PORT", "8080"))
KEYCLOAK_URL = f"http://127.0.0.1:{KEYCLOAK_PORT}"
MANAGEMENT_PORT = int(os.environ.get("KEYCLOAK_MANAGEMENT_PORT", "9000"))
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6390"))


def keycloak_ready() -> bool:
    try:
        return requests.get(f"http://127.0.0.1:{MANAGEMENT_PORT}/health/ready", timeout=2).ok
    except requests.RequestException:
        return False


def run_script(name: str, action: str) -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / name), action], capture_output=True, text=True, timeout=600
    )
    if result.returncode != 0:
        pytest.fail(f"scripts/{name} {action} failed:\n{result.stderr[-3000:]}", pytrace=False)


@pytest.fixture(scope="session")
def keycloak_server() -> Iterator[str]:
    started_here = not keycloak_ready()
    if started_here:
        run_script("keycloak.sh", "start")
    yield KEYCLOAK_URL
    if started_here and os.environ.get("KEYCLOAK_KEEP_RUNNING") != "1":
        run_script("keycloak.sh", "stop")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    status = subprocess.run([str(ROOT / "scripts" / "redis.sh"), "status"], capture_output=True)
    started_here = status.returncode != 0
    if started_here:
        run_script("redis.sh", "start")
    yield f"redis://127.0.0.1:{REDIS_PORT}/0"
    if started_here:
        run_script("redis.sh", "stop")


def client_settings(server_url: str, **overrides: Any) -> dict[str, Any]:
    secrets = realm_secrets()
    return {
        "SERVER_URL": server_url,
        "REALM": "demo",
        "CLIENT_ID": "django-service",
        "CLIENT_SECRET": secrets["django-service"],
        "CLIENTS": {
            "hs512": {
                "CLIENT_ID": "django-service-hs512",
                "CLIENT_SECRET": secrets["django-service-hs512"],
                "ALGORITHM": "HS512",
            },
            "no-roles": {
                "CLIENT_ID": "django-no-roles",
                "CLIENT_SECRET": secrets["django-no-roles"],
            },
            "short-lived": {
                "CLIENT_ID": "django-short-lived",
                "CLIENT_SECRET": secrets["django-short-lived"],
            },
        },
        **overrides,
    }


@pytest.fixture
def real_keycloak(keycloak_server: str, settings: Any) -> str:
    """Point the app at the real Keycloak (default client: django-service)."""
    settings.KEYCLOAK_JWT_AUTH = client_settings(keycloak_server)
    return keycloak_server
