"""``pip install .`` ships what the app needs at run time (the template, the commands, py.typed),
and the package works without its optional extras."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contents(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
        timeout=300,
    )
    [wheel] = tmp_path.glob("keycloak_jwt_auth-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in (
        "keycloak_jwt_auth/py.typed",
        "keycloak_jwt_auth/templates/keycloak_jwt_auth/index.html",
        "keycloak_jwt_auth/management/commands/fetch_token.py",
        "keycloak_jwt_auth/tokens/manager.py",
        "keycloak_jwt_auth/testing/__init__.py",
    ):
        assert needed in names
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "[pytest11]\nkeycloak_jwt_auth.pytest_plugin = keycloak_jwt_auth.pytest_plugin" in (
        zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    assert not any(name.startswith(("tests/", "demo_project/", "benchmarks/")) for name in names)


WITHOUT_EXTRAS = """
import importlib.abc, sys

class Absent(importlib.abc.MetaPathFinder):  # as if the extras were not installed
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("cryptography", "httpx", "opentelemetry"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, Absent())
import django
django.setup()
from django.test import override_settings
from django.conf import settings
import keycloak_jwt_auth
from keycloak_jwt_auth.client_auth import build_client_assertion
from keycloak_jwt_auth.clients import get_client_config
from keycloak_jwt_auth.settings.rules import client_problems
assert build_client_assertion(get_client_config()).count(".") == 2  # client_secret_jwt works
key_client = {**settings.KEYCLOAK_JWT_AUTH, "AUTH_METHOD": "private_key_jwt",
              "CLIENT_SECRET": None, "PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----"}
with override_settings(KEYCLOAK_JWT_AUTH=key_client):
    print(" ".join(problem.id for problem in client_problems("default")))
assert "cryptography" not in sys.modules and "httpx" not in sys.modules
"""


def test_the_package_works_without_its_extras() -> None:
    """No cryptography, httpx or opentelemetry: client_secret_jwt works, and a private_key_jwt
    client is refused by a check that names the extra to install (not by an ImportError)."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_EXTRAS],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["E019"]
