"""The version matrix: on each supported Python and Django beside the main run's (Python 3.11,
Django 5.2 pinned, in scripts/test.sh): the unit suite and the Keycloak contract tests (marker
``contract``) against the real server, in one pytest run.

    nox -l                                # the sessions
    nox -s py3.13-django6.1-newest        # one of them; arguments after -- go to pytest

Interpreters come from pyenv ($(pyenv root)/versions/3.X.Y) or ``python3.X`` on PATH. A missing
one skips its session with a line that says so; with ``CI=true`` it fails the run.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
# The package with every extra, its dependencies resolved from its metadata; editable, so that the
# tests that look at the package's own files and frames (test_shape.py) see the checkout.
PACKAGE = ("--editable", ".[async,keys,otel,redis]")
# Beside the package, the tests need the SDK of the otel extra's API and the demo's settings reader.
BESIDE = ("opentelemetry-sdk", "django-environ")
TEST_TOOLS = ("-r", "requirements-test.txt")
SUITE = (
    "(not keycloak and not redis and not memcached and not postgres and not browser) or contract"
)
# Logged by each session: what its dependencies resolved to.
SHOWN = {"django", "requests", "pyjwt", "cryptography", "httpx", "redis", "opentelemetry-api"}

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.download_python = "never"  # an interpreter comes from the machine, never a download
nox.options.error_on_missing_interpreters = os.environ.get("CI") == "true"


def interpreter(version: str) -> str:
    """The newest pyenv build of ``version`` (its shims run only the active versions), else the
    version itself, which nox looks for on PATH and reports missing."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    builds = {
        int(match[1]): path
        for path in pyenv_root.glob(f"versions/{version}.*/bin/python{version}")
        if (match := re.fullmatch(rf"{re.escape(version)}\.(\d+)", path.parents[1].name))
    }
    return str(builds[max(builds)]) if builds else version


def run_suite(session: nox.Session) -> None:
    frozen = session.run("python", "-m", "pip", "freeze", silent=True) or ""
    pins = [line for line in frozen.splitlines() if line.split("==")[0].lower() in SHOWN]
    python = (session.run("python", "--version", silent=True) or "").strip()
    session.log(f"{python}, {', '.join(sorted(pins, key=str.lower))}")
    session.run("pytest", "-q", "-m", SUITE, *session.posargs)


@nox.session(name="py3.10-django5.2-lowest", python=interpreter("3.10"))
def lowest(session: nox.Session) -> None:
    """Python 3.10, Django 5.2.0 and every dependency at the lowest version pyproject allows."""
    session.install(*PACKAGE, *BESIDE, *TEST_TOOLS, "-c", "requirements-lowest.txt")
    run_suite(session)


@nox.session(name="py3.12-django6.0", python=interpreter("3.12"))
def django60(session: nox.Session) -> None:
    """Python 3.12, Django 6.0; every other dependency as requirements.txt pins it."""
    pinned = (ROOT / "requirements.txt").read_text().splitlines()
    others = [line for line in pinned if not line.startswith("Django==")]
    constraints = Path(session.create_tmp()) / "constraints.txt"
    constraints.write_text("\n".join(["Django==6.0.10", *others]) + "\n")
    session.install(*PACKAGE, *BESIDE, *TEST_TOOLS, "-c", str(constraints))
    run_suite(session)


@nox.session(name="py3.13-django6.1-newest", python=interpreter("3.13"))
def newest(session: nox.Session) -> None:
    """Python 3.13, Django 6.1 and every other dependency at the newest version pyproject allows."""
    session.install("--upgrade", *PACKAGE, "Django>=6.1,<6.2", *BESIDE, *TEST_TOOLS)
    run_suite(session)
