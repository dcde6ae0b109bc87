"""The sdist and the wheel: the wheel ships what the app needs at run time (the template, the
commands, py.typed) with the metadata a package index shows, the sdist no test tree; the package
works without its optional extras, and every install hint has one form."""

from __future__ import annotations

import email
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import keycloak_jwt_auth

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist, and the wheel built from it, as a release makes them."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "-q", "--outdir", str(out), str(ROOT)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    return out


def test_wheel_contents(dist: Path) -> None:
    [wheel] = dist.glob("keycloak_jwt_auth-*.whl")
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


def test_wheel_metadata(dist: Path) -> None:
    [wheel] = dist.glob("keycloak_jwt_auth-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        message = email.message_from_bytes(archive.read(metadata))
        assert metadata.replace("METADATA", "licenses/LICENSE") in archive.namelist()
    assert message["Version"] == keycloak_jwt_auth.__version__
    assert message["License-Expression"] == "MIT"
    assert message["License-File"] == "LICENSE"
    classifiers = set(message.get_all("Classifier") or [])
    for tested in ("Python :: 3.10", "Python :: 3.11", "Python :: 3.12", "Python :: 3.13"):
        assert f"Programming Language :: {tested}" in classifiers
    for tested in ("5.2", "6.0", "6.1"):
        assert f"Framework :: Django :: {tested}" in classifiers
    assert any(c.startswith("Development Status :: ") for c in classifiers)


def test_the_sdist_holds_the_package_without_the_test_tree(dist: Path) -> None:
    [sdist] = dist.glob("keycloak_jwt_auth-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"LICENSE", "CHANGELOG.md", "README.md", "keycloak_jwt_auth/py.typed"} <= names
    assert not any(name.startswith(("tests/", "benchmarks/", "demo_project/")) for name in names)


def test_every_install_hint_quotes_its_extras() -> None:
    """One form everywhere, ``pip install 'keycloak-jwt-auth[keys]'``: zsh globs a bare [...]."""
    texts = [ROOT / "README.md", *ROOT.glob("docs/*.md"), *ROOT.glob("keycloak_jwt_auth/**/*.py")]
    hints = {
        (path.name, hint)
        for path in texts
        for hint in re.findall(r"pip install\s+(\S+)", path.read_text())
        if "[" in hint
    }
    assert hints
    assert {(name, hint) for name, hint in hints if not hint.startswith("'")} == set()


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
