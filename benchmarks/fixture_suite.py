"""What the ``fake_keycloak`` fixture costs a project's suite: 200 tests that use it against 200
that do not (and 200 on the session-scoped ``shared_fake_keycloak``), each suite run by pytest in
a subprocess, the fastest of ``--repeat`` runs kept. No Keycloak needed.

    python -m benchmarks.fixture_suite [--tests 200] [--repeat 3] [--root PATH]

``--root`` measures another checkout's package (its plugin, its fake): before and after a change.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SUITES = {  # name: (the test's parameters, its body)
    "without the fixture": ("", "assert True"),
    "fake_keycloak": ("fake_keycloak", "assert fake_keycloak.url"),
    "shared_fake_keycloak": ("shared_fake_keycloak", "assert shared_fake_keycloak.url"),
}
SETTINGS = """
SECRET_KEY = "benchmark"
INSTALLED_APPS = ["keycloak_jwt_auth"]
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
KEYCLOAK_JWT_AUTH = {}
"""


def write_suite(folder: Path, parameters: str, body: str, tests: int) -> None:
    folder.mkdir()
    (folder / "bench_settings.py").write_text(SETTINGS)
    (folder / "pytest.ini").write_text("[pytest]\nDJANGO_SETTINGS_MODULE = bench_settings\n")
    lines = [f"def test_{n}({parameters}):\n    {body}\n" for n in range(tests)]
    (folder / "test_suite.py").write_text("\n".join(lines))


def seconds(folder: Path, root: Path) -> float:
    """One pytest run of the suite in ``folder``, wall time."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), str(folder)])}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    command += ["-p", "keycloak_jwt_auth.pytest_plugin", str(folder)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"the suite in {folder} failed:\n{done.stdout}{done.stderr}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=200, help="Tests per suite.")
    parser.add_argument("--repeat", type=int, default=3, help="Runs per suite (fastest kept).")
    parser.add_argument("--root", type=Path, default=ROOT, help="The checkout to measure.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for name, (parameters, body) in SUITES.items():
            folder = Path(tmp) / name.replace(" ", "_")
            write_suite(folder, parameters, body, args.tests)
            try:
                best = min(seconds(folder, args.root) for _ in range(args.repeat))
            except RuntimeError as exc:  # an older checkout without this fixture
                print(f"{name:<22} not measured: {str(exc).splitlines()[0]}")
                continue
            each = best / args.tests * 1000
            print(f"{name:<22} {args.tests} tests: {best:6.2f} s ({each:.1f} ms each)")


if __name__ == "__main__":
    main()
