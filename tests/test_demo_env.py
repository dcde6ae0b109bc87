"""The demo project's ``.env`` (copied from ``.env.example``) against another Keycloak: the
demo realm's provisioning client does not follow the environment there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRINT_CLIENTS = (
    "import json; from demo_project import settings as s; "
    "print(json.dumps(sorted(s.KEYCLOAK_JWT_AUTH.get('CLIENTS', {}))))"
)


def demo_clients(**environment: str) -> list[str]:
    """The demo settings' named clients, in a process whose real environment is ``environment``
    (and no other KEYCLOAK_* variable)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("KEYCLOAK_")}
    result = subprocess.run(
        [sys.executable, "-c", PRINT_CLIENTS],
        cwd=ROOT,
        env={**base, "PYTHONPATH": str(ROOT), **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)  # type: ignore[no-any-return]


@pytest.fixture
def dotenv_with_provisioning() -> None:
    dotenv = ROOT / ".env"
    if "KEYCLOAK_PROVISIONING_CLIENT_SECRET=" not in (
        dotenv.read_text() if dotenv.exists() else ""
    ):
        pytest.skip(".env (scripts/setup.sh copies .env.example) defines no provisioning client")


@pytest.mark.usefixtures("dotenv_with_provisioning")
def test_the_provisioning_client_of_dotenv_stays_with_the_demo_realm() -> None:
    assert demo_clients() == ["provisioning"]
    assert demo_clients(KEYCLOAK_SERVER_URL="https://sso.example.com") == []
    assert demo_clients(KEYCLOAK_REALM="staff") == []
    kept = demo_clients(
        KEYCLOAK_SERVER_URL="https://sso.example.com",
        KEYCLOAK_PROVISIONING_CLIENT_SECRET="set-in-the-environment-0123456789-abcdef",
    )
    assert kept == ["provisioning"]


def test_the_example_says_so() -> None:
    example = (ROOT / ".env.example").read_text()
    assert "these two lines are ignored" in example
    assert "KEYCLOAK_PROVISIONING_CLIENT_SECRET=" in example
