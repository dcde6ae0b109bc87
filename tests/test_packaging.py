"""``pip install .`` ships what the app needs at run time: the template, the command, py.typed."""

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
        "keycloak_jwt_auth/manager.py",
        "keycloak_jwt_auth/testing.py",
    ):
        assert needed in names
    [entry_points] = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    assert "[pytest11]\nkeycloak_jwt_auth.pytest_plugin = keycloak_jwt_auth.pytest_plugin" in (
        zipfile.ZipFile(wheel).read(entry_points).decode()
    )
    assert not any(name.startswith(("tests/", "demo_project/", "benchmarks/")) for name in names)
