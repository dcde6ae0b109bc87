"""``manage.py keycloak_user`` against a loopback Keycloak: what each action sends and prints,
where the password comes from, and how failures end (stderr, non-zero exit)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from .loopback import Answer, Loopback, Received

USERS = "/admin/realms/demo/users"
PASSWORD = "a-password-from-stdin-0123"
ADA = {"id": "u-1", "username": "ada", "email": "ada@example.com", "enabled": True}


def ok(body: Any = None, status: int = 200, **headers: str) -> Answer:
    return Answer(status, b"" if body is None else json.dumps(body).encode(), headers)


def by_method(get: Answer, other: Answer) -> Callable[[Received], Answer]:
    return lambda received: get if received.method == "GET" else other


@pytest.fixture
def keycloak(loopback_keycloak: Loopback) -> Loopback:
    """A realm with one user, ada, in no group; the role editor; the group /staff."""
    server = loopback_keycloak
    server.route(USERS, by_method(ok([ADA]), ok(status=201, Location=f"{server.url}{USERS}/u-2")))
    for path in ("/u-1", "/u-2", "/u-1/reset-password", "/u-2/reset-password", "/u-1/groups/g-1",
                 "/u-1/role-mappings/realm"):  # fmt: skip
        server.route(f"{USERS}{path}", ok(status=204))
    server.route("/admin/realms/demo/roles", ok([{"id": "r1", "name": "editor"}]))
    server.route("/admin/realms/demo/group-by-path/staff", ok({"id": "g-1", "path": "/staff"}))
    server.route(f"{USERS}/u-1/groups", ok([{"id": "g-1", "path": "/staff"}]))
    server.route(
        f"{USERS}/u-1/role-mappings/realm", by_method(ok([{"name": "editor"}]), ok(status=204))
    )
    return server


def keycloak_user(*args: str, stdin: str = "") -> tuple[str, str, int]:
    """(stdout, stderr, exit code), the password piped on stdin."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("keycloak_user", *args, stdout=out, stderr=err, stdin=io.StringIO(stdin))
    except CommandError as exc:
        return out.getvalue(), f"CommandError: {exc}\n", exc.returncode
    return out.getvalue(), err.getvalue(), 0


def writes(server: Loopback) -> list[tuple[str, str, Any]]:
    return [
        (r.method, r.path, json.loads(r.body) if r.body else None)
        for r in server.received
        if r.method != "GET" and r.path.startswith("/admin/")
    ]


def test_create_with_a_password_from_stdin(keycloak: Loopback) -> None:
    out, err, code = keycloak_user(
        "create", "bob", "--email", "bob@example.com", "--first-name", "Bob", "--password",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert (out, err, code) == ("Created user 'bob' with a password (id u-2).\n", "", 0)
    assert writes(keycloak) == [
        ("POST", USERS, {"username": "bob", "enabled": True, "email": "bob@example.com",
                         "firstName": "Bob"}),
        ("PUT", f"{USERS}/u-2/reset-password",
         {"type": "password", "value": PASSWORD, "temporary": False}),
    ]  # fmt: skip


def test_create_json_and_disabled(keycloak: Loopback) -> None:
    out, _, code = keycloak_user("create", "bob", "--disabled", "--json")
    assert code == 0
    assert json.loads(out) == {
        "action": "create",
        "id": "u-2",
        "username": "bob",
        "message": "Created user 'bob' (id u-2).",
    }
    assert writes(keycloak) == [("POST", USERS, {"username": "bob", "enabled": False})]


def test_a_refused_password_leaves_no_user(keycloak: Loopback) -> None:
    words = "Invalid password: minimum length 12."
    policy = {"error": "invalidPasswordMinLengthMessage", "error_description": words}
    keycloak.route(f"{USERS}/u-2/reset-password", ok(policy, status=400))
    out, err, code = keycloak_user("create", "bob", "--password", stdin="short\n")
    assert code == 1 and out == ""
    assert "The user was not kept" in err and words in err
    assert [(m, p) for m, p, _ in writes(keycloak)][-1] == ("DELETE", f"{USERS}/u-2")
    assert "short" not in err


def test_set_password_finds_the_user_and_reads_stdin(keycloak: Loopback) -> None:
    out, _, code = keycloak_user("set-password", "ada", "--temporary", stdin=PASSWORD)
    assert (out, code) == ("Set a temporary password of 'ada'.\n", 0)
    assert writes(keycloak) == [
        ("PUT", f"{USERS}/u-1/reset-password",
         {"type": "password", "value": PASSWORD, "temporary": True}),
    ]  # fmt: skip
    assert PASSWORD not in out


def test_the_password_prompt_asks_twice(
    keycloak: Loopback, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    answers = iter([PASSWORD, PASSWORD, PASSWORD, "typo"])
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))
    out = io.StringIO()
    call_command("keycloak_user", "set-password", "ada", stdout=out, stdin=Terminal())
    assert out.getvalue() == "Set the password of 'ada'.\n"
    with pytest.raises(CommandError, match="The passwords do not match"):
        call_command("keycloak_user", "set-password", "ada", stdin=Terminal())
    assert len(writes(keycloak)) == 1


def test_an_empty_password_is_refused_before_any_write(keycloak: Loopback) -> None:
    _, err, code = keycloak_user("create", "bob", "--password", stdin="\n")
    assert code == 1 and "No password given" in err
    assert writes(keycloak) == []


def test_the_password_is_never_an_argument() -> None:
    with pytest.raises(CommandError, match="unrecognized arguments: hunter2-hunter2"):
        call_command("keycloak_user", "set-password", "ada", "hunter2-hunter2")


def test_add_to_group_grant_role_show_and_delete(keycloak: Loopback) -> None:
    assert keycloak_user("add-to-group", "ada", "/staff")[0] == "Added 'ada' to group '/staff'.\n"
    assert keycloak_user("grant-role", "ada", "editor")[0] == (
        "Granted realm roles editor to 'ada'.\n"
    )
    shown = json.loads(keycloak_user("show", "ada", "--json")[0])
    assert shown == {
        "action": "show",
        "id": "u-1",
        "username": "ada",
        "email": "ada@example.com",
        "enabled": True,
        "groups": ["/staff"],
        "realm_roles": ["editor"],
        "message": shown["message"],
    }
    assert "groups: ['/staff']" in keycloak_user("show", "ada")[0]
    assert keycloak_user("delete", "ada")[0] == "Deleted user 'ada'.\n"
    assert writes(keycloak) == [
        ("PUT", f"{USERS}/u-1/groups/g-1", None),
        ("POST", f"{USERS}/u-1/role-mappings/realm", [{"id": "r1", "name": "editor"}]),
        ("DELETE", f"{USERS}/u-1", None),
    ]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["delete", "nobody"], "No user 'nobody' in realm 'demo'."),
        (["grant-role", "ada", "root"], "ValueError: Unknown realm roles: 'root'"),
        (["show", "ada", "--client", "nope"], "Unknown Keycloak client"),
    ],
)
def test_failures_are_one_line_on_stderr(keycloak: Loopback, args: list[str], words: str) -> None:
    keycloak.route(USERS, lambda got: ok([ADA] if "username=ada" in got.path else []))
    out, err, code = keycloak_user(*args)
    assert (out, code) == ("", 1) and words in err and err.count("\n") == 1


def test_a_403_names_manage_users(keycloak: Loopback) -> None:
    keycloak.route(USERS, lambda got: ok({"error": "HTTP 403 Forbidden"}, status=403))
    _, err, code = keycloak_user("create", "bob")
    assert code == 1 and "realm-management role 'manage-users'" in err
