"""Fixtures for tests against the real Keycloak, Redis, memcached and PostgreSQL started by the
project's scripts.

A server that is not running is started once per test run and stopped at the end. If it
cannot start, the tests fail: they never skip.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest
import requests
from django.core.handlers.wsgi import WSGIHandler

from keycloak_jwt_auth.keys import KEY_ALGORITHMS
from support.realm import realm_secrets
from support.shared_cache import SharedCache
from tests.keyring import pem

ROOT = Path(__file__).resolve().parents[2]
JWKS_PATH = "/.well-known/jwks"  # + "/<client id>.json": one URL per Keycloak client
KEYCLOAK_PORT = int(os.environ.get("KEYCLOAK_PORT", "8080"))
KEYCLOAK_URL = f"http://127.0.0.1:{KEYCLOAK_PORT}"
MANAGEMENT_PORT = int(os.environ.get("KEYCLOAK_MANAGEMENT_PORT", "9000"))
REDIS_PORT = int(os.environ.get("REDIS_PORT", "6390"))
MEMCACHED_PORT = int(os.environ.get("MEMCACHED_PORT", "11290"))
POSTGRES_PORT = int(os.environ.get("POSTGRES_PORT", "5490"))
POSTGRES_DB = os.environ.get("POSTGRES_DB", "keycloak_jwt_auth")
CACHE_TABLE = "keycloak_jwt_auth_cache"


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


@contextlib.contextmanager
def script_service(name: str) -> Iterator[None]:
    """scripts/NAME.sh: started unless running, and then stopped at the end."""
    status = subprocess.run([str(ROOT / "scripts" / name), "status"], capture_output=True)
    started_here = status.returncode != 0
    if started_here:
        run_script(name, "start")
    try:
        yield
    finally:
        if started_here:
            run_script(name, "stop")


@pytest.fixture(scope="session")
def redis_server() -> Iterator[str]:
    with script_service("redis.sh"):
        yield f"redis://127.0.0.1:{REDIS_PORT}/0"


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[str]:
    """The cache URL of the real memcached, for Django's PyMemcacheCache."""
    with script_service("memcached.sh"):
        yield f"pymemcache://127.0.0.1:{MEMCACHED_PORT}"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The database URL of the real PostgreSQL's test database."""
    with script_service("postgres.sh"):
        yield f"postgres://postgres@127.0.0.1:{POSTGRES_PORT}/{POSTGRES_DB}"


@pytest.fixture(scope="session")
def database_cache(postgres_server: str) -> SharedCache:
    """Django's DatabaseCache on the real PostgreSQL; its table is made here, once, before any
    worker starts (``createcachetable``)."""
    cache = SharedCache("postgres", f"dbcache://{CACHE_TABLE}", postgres_server)
    try:
        cache.create_table()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return cache


# The real shared caches, for @pytest.mark.parametrize("shared_cache", SHARED_CACHES,
# indirect=True); each brings its own marker.
SHARED_CACHES = [
    pytest.param("redis", marks=pytest.mark.redis, id="redis"),
    pytest.param("memcached", marks=pytest.mark.memcached, id="memcached"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
]


@pytest.fixture
def shared_cache(request: pytest.FixtureRequest) -> SharedCache:
    """One real shared cache, emptied; only the server the test needs is started."""
    name = request.param
    if name == "redis":
        cache = SharedCache(name, request.getfixturevalue("redis_server"))
    elif name == "memcached":
        cache = SharedCache(name, request.getfixturevalue("memcached_server"))
    else:
        cache = request.getfixturevalue("database_cache")
    try:
        cache.clear()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return cache


def wait_for_lock_waiters(watch: psycopg.Connection[Any], count: int) -> None:
    """Until ``count`` sessions of the test database wait on a lock; ``watch`` must autocommit
    (pg_stat_activity is read afresh in each transaction)."""
    deadline = time.monotonic() + 60
    waiting = 0
    while time.monotonic() < deadline:
        row = watch.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
        waiting = row[0] if row else 0
        if waiting >= count:
            return
        time.sleep(0.05)
    pytest.fail(f"{waiting} of {count} processes reached the lock")


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
            "provisioning": {  # manage-users: the Admin API writes
                "CLIENT_ID": "django-provisioning",
                "CLIENT_SECRET": secrets["django-provisioning"],
            },
        },
        **overrides,
    }


FAMILY_CLIENTS = {
    "RS": "django-keys-rsa",
    "PS": "django-keys-pss",
    "ES": "django-keys-ec",
    "Ed": "django-keys-eddsa",
}


def key_client(client_id: str, algorithm: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "AUTH_METHOD": "private_key_jwt",
        "CLIENT_ID": client_id,
        "CLIENT_SECRET": None,
        "PRIVATE_KEY": key,
        "ALGORITHM": algorithm,
        **extra,
    }


def with_key_clients(server_url: str, **clients: dict[str, Any]) -> dict[str, Any]:
    """The usual settings, plus one named client per algorithm (all published at once, so
    that whichever read of the JWKS Keycloak makes finds every key the tests use: it re-reads
    it for an unknown kid at most every 10 s) and ``clients``."""
    base = client_settings(server_url)
    by_algorithm = {
        algorithm: key_client(FAMILY_CLIENTS[algorithm[:2]], algorithm, pem(algorithm))
        for algorithm in KEY_ALGORITHMS
    }
    return {**base, "CLIENTS": {**base["CLIENTS"], **by_algorithm, **clients}}


@pytest.fixture
def real_keycloak(keycloak_server: str, settings: Any) -> str:
    """Point the app at the real Keycloak (default client: django-service)."""
    settings.KEYCLOAK_JWT_AUTH = client_settings(keycloak_server)
    return keycloak_server


@dataclass
class JwksServer:
    """This test process's Django app (so ``settings`` changes apply at once), served where the
    demo realm's key clients read their JWKS; records when Keycloak reads it."""

    url: str  # the base: Keycloak client X reads f"{url}/X.json"
    fetches: list[float]  # time.time() of each GET of a JWKS


@pytest.fixture(scope="session")
def jwks_server() -> Iterator[JwksServer]:
    port = int(os.environ.get("DEMO_PORT", "8000"))  # as scripts/keycloak.sh tells Keycloak
    fetches: list[float] = []
    django_app = WSGIHandler()

    def app(environ: dict[str, Any], start_response: Any) -> Any:
        if environ["PATH_INFO"].startswith(f"{JWKS_PATH}/"):
            fetches.append(time.time())
        return django_app(environ, start_response)

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    try:
        server = make_server("127.0.0.1", port, app, ThreadingWSGIServer, Quiet)
    except OSError as exc:
        pytest.fail(f"The JWKS server needs port {port} (DEMO_PORT): {exc}", pytrace=False)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield JwksServer(f"http://127.0.0.1:{port}{JWKS_PATH}", fetches)
    server.shutdown()
    server.server_close()


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, seconds: float = 30) -> None:
    """Until ``url`` answers at all (a demo server starting)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            requests.get(url, timeout=5)
            return
        except requests.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def demo_environment(keycloak_server: str, folder: Path) -> dict[str, str]:
    """The demo project's environment against the real Keycloak, its database in ``folder``
    (migrated), the demo views open: what runserver and uvicorn both serve in the tests."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
        "KEYCLOAK_SERVER_URL": keycloak_server,
        "KEYCLOAK_CLIENT_ID": "django-service",
        "KEYCLOAK_CLIENT_SECRET": realm_secrets()["django-service"],
        "KEYCLOAK_PROVISIONING_CLIENT_ID": "django-provisioning",  # the "create user" form's
        "KEYCLOAK_PROVISIONING_CLIENT_SECRET": realm_secrets()["django-provisioning"],
        "CACHE_URL": "locmemcache://",
        "DJANGO_DEBUG": "True",
        "KEYCLOAK_DEMO_ALLOW_ANONYMOUS": "True",
    }
    migrate = [sys.executable, "manage.py", "migrate", "-v0"]
    subprocess.run(migrate, cwd=ROOT, env=env, check=True, timeout=120)
    return env


def password_login(server_url: str, username: str, password: str) -> requests.Response:
    """A password-grant login with demo-password-login, the realm's only client that takes
    passwords (direct access grants): proves a password set through the Admin API."""
    return requests.post(
        f"{server_url}/realms/demo/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": "demo-password-login",
            "username": username,
            "password": password,
            "scope": "openid",
        },
        timeout=30,
    )


def delete_user_named(username: str) -> None:
    """A test's clean-up: delete the user ``username`` if it exists, as the manage-users client
    (needs ``real_keycloak``'s settings)."""
    from keycloak_jwt_auth import KeycloakAdmin

    admin = KeycloakAdmin("provisioning")
    user = admin.find_user(username=username)
    if user:
        admin.delete_user(user["id"])
