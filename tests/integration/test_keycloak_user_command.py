"""``manage.py keycloak_user`` as a user runs it: a subprocess with the demo project's settings,
the password piped on stdin, against the real Keycloak."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from keycloak_jwt_auth import KeycloakAdmin
from support.realm import realm_secrets

from .conftest import ROOT, delete_user_named, password_login

pytestmark = pytest.mark.keycloak


def keycloak_user(
    keycloak_url: str, *args: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    secrets = realm_secrets()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo_project.settings",
        "KEYCLOAK_SERVER_URL": keycloak_url,
        "KEYCLOAK_REALM": "demo",
        "KEYCLOAK_CLIENT_ID": "django-service",
        "KEYCLOAK_CLIENT_SECRET": secrets["django-service"],
        "KEYCLOAK_PROVISIONING_CLIENT_ID": "django-provisioning",
        "KEYCLOAK_PROVISIONING_CLIENT_SECRET": secrets["django-provisioning"],
        "CACHE_URL": "locmemcache://",
    }
    return subprocess.run(
        [sys.executable, "manage.py", "keycloak_user", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def group(real_keycloak: str) -> Iterator[str]:
    """A group to add users to, deleted at the end."""
    admin = KeycloakAdmin("provisioning")
    name = f"cmd-group-{uuid.uuid4().hex[:10]}"
    group_id = admin.create_group(name)
    yield name
    admin.delete_group(group_id)


@pytest.fixture
def username(real_keycloak: str) -> Iterator[str]:
    """A new username; the user is deleted at the end if a test left it behind."""
    name = f"cmd-user-{uuid.uuid4().hex[:10]}"
    yield name
    delete_user_named(name)


def test_create_with_password_group_role_show_delete(
    real_keycloak: str, username: str, group: str
) -> None:
    password = f"{uuid.uuid4().hex}-Cmd1"

    def run(*args: str, stdin: str = "") -> str:
        done = keycloak_user(real_keycloak, *args, "--client", "provisioning", stdin=stdin)
        assert done.returncode == 0, done.stderr
        assert password not in done.stdout + done.stderr
        return done.stdout

    created = json.loads(
        run("create", username, "--email", f"{username}@example.com", "--first-name", "Cmd",
            "--last-name", "Line", "--password", "--json", stdin=password + "\n")
    )  # fmt: skip
    assert created["username"] == username and created["id"]
    assert password_login(real_keycloak, username, password).status_code == 200

    assert run("add-to-group", username, group) == f"Added {username!r} to group '/{group}'.\n"
    run("grant-role", username, "newsletter-editor")
    shown = json.loads(run("show", username, "--json"))
    assert (shown["id"], shown["groups"]) == (created["id"], [f"/{group}"])
    assert "newsletter-editor" in shown["realm_roles"] and shown["enabled"] is True

    assert run("delete", username) == f"Deleted user {username!r}.\n"
    assert KeycloakAdmin().find_user(username=username) is None


def test_the_read_only_client_is_refused_naming_manage_users(
    real_keycloak: str, username: str
) -> None:
    done = keycloak_user(real_keycloak, "create", username)  # the default client: read-only
    assert done.returncode == 1 and done.stdout == ""
    assert "AdminForbiddenError" in done.stderr
    assert "realm-management role 'manage-users'" in done.stderr
