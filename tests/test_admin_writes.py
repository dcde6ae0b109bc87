"""The Admin API writes of KeycloakAdmin and AsyncKeycloakAdmin, against a loopback Keycloak:
what each sends, what it returns, how Keycloak's refusals map, what is refused before any
request, and that a write is never sent twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth import (
    AdminAPIError,
    AdminBadRequestError,
    AdminConflictError,
    AdminForbiddenError,
    AdminUnavailableError,
    AsyncKeycloakAdmin,
    KeycloakAdmin,
)
from keycloak_jwt_auth.admin import CredentialRepresentation
from keycloak_jwt_auth.admin.calls import create_user, set_password

from .loopback import Answer, Loopback, Received

USERS = "/admin/realms/demo/users"
GROUPS = "/admin/realms/demo/groups"
PASSWORD = "correct-horse-battery-staple"
ROLES = [{"id": "r1", "name": "editor"}, {"id": "r2", "name": "viewer"}]

Call = Callable[[Any], Any]  # on a KeycloakAdmin or an AsyncKeycloakAdmin (then awaited)


@pytest.fixture
def keycloak(loopback_keycloak: Loopback) -> Loopback:
    """The loopback Keycloak, with the realm's roles."""
    loopback_keycloak.route("/admin/realms/demo/roles", Answer(200, json.dumps(ROLES).encode()))
    return loopback_keycloak


@pytest.fixture(params=["sync", "async"])
def run(request: pytest.FixtureRequest) -> Callable[[Call], Any]:
    """Runs a call on the sync client, or on the async one inside a fresh event loop."""
    if request.param == "sync":
        return lambda call: call(KeycloakAdmin())

    def run_async(call: Call) -> Any:
        async def main() -> Any:
            return await call(AsyncKeycloakAdmin())

        return asyncio.run(main())

    return run_async


def answer(status: int, body: Any = None, **headers: str) -> Answer:
    return Answer(status, b"" if body is None else json.dumps(body).encode(), headers)


def admin_requests(server: Loopback) -> list[Received]:
    return [r for r in server.received if r.path.startswith("/admin/")]


def sent_json(received: Received) -> Any:
    return json.loads(received.body) if received.body else None


def created(server: Loopback, collection: str, new_id: str) -> Answer:
    return answer(201, Location=f"{server.url}{collection}/{new_id}")


# --- what each write sends and returns --------------------------------------------------------


def test_create_user_posts_the_representation_and_returns_the_id_from_location(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(USERS, created(keycloak, USERS, "u-1"))
    new_id = run(lambda a: a.create_user({"username": "ada", "email": "ada@example.com"}))
    assert new_id == "u-1"
    [sent] = admin_requests(keycloak)
    assert (sent.method, sent.path) == ("POST", USERS)
    assert sent_json(sent) == {"username": "ada", "email": "ada@example.com"}
    assert sent.headers["Content-Type"] == "application/json"
    assert sent.headers["Authorization"] == "Bearer loopback-token"


@pytest.mark.parametrize(
    ("call", "method", "path", "body"),
    [
        (lambda a: a.update_user("u-1", {"firstName": "Ada"}), "PUT", f"{USERS}/u-1",
         {"firstName": "Ada"}),
        (lambda a: a.delete_user("u-1"), "DELETE", f"{USERS}/u-1", None),
        (lambda a: a.set_password("u-1", PASSWORD), "PUT", f"{USERS}/u-1/reset-password",
         {"type": "password", "value": PASSWORD, "temporary": False}),
        (lambda a: a.set_password("u-1", PASSWORD, temporary=True), "PUT",
         f"{USERS}/u-1/reset-password", {"type": "password", "value": PASSWORD, "temporary": True}),
        (lambda a: a.add_user_to_group("u-1", "g-1"), "PUT", f"{USERS}/u-1/groups/g-1", None),
        (lambda a: a.remove_user_from_group("u-1", "g-1"), "DELETE", f"{USERS}/u-1/groups/g-1",
         None),
        (lambda a: a.delete_group("g-1"), "DELETE", f"{GROUPS}/g-1", None),
    ],
)  # fmt: skip
def test_writes_without_an_answer_send_their_method_path_and_body(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, method: str, path: str, body: Any
) -> None:
    keycloak.route(path, answer(204))
    assert run(call) is None
    [sent] = admin_requests(keycloak)
    assert (sent.method, sent.path, sent_json(sent)) == (method, path, body)


@pytest.mark.parametrize(
    ("call", "path"),
    [
        (lambda a: a.create_group("staff"), GROUPS),
        (lambda a: a.create_group("editors", parent_id="g-1"), f"{GROUPS}/g-1/children"),
    ],
)
def test_create_group_top_level_or_below_a_parent(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, path: str
) -> None:
    keycloak.route(path, created(keycloak, GROUPS, "g-2"))  # a subgroup's Location is in /groups
    assert run(call) == "g-2"
    [sent] = admin_requests(keycloak)
    assert (sent.method, sent.path) == ("POST", path)
    assert set(sent_json(sent)) == {"name"}


@pytest.mark.parametrize(
    ("call", "path", "listed"),
    [
        (lambda a: a.user_groups("u-1"), f"{USERS}/u-1/groups", [{"id": "g", "name": "staff"}]),
        (lambda a: a.user_realm_roles("u-1"), f"{USERS}/u-1/role-mappings/realm", ROLES),
        (lambda a: a.group_by_path("/staff/editors"),
         "/admin/realms/demo/group-by-path/staff/editors", {"id": "g", "path": "/staff/editors"}),
    ],
)  # fmt: skip
def test_reads_that_go_with_the_writes(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, path: str, listed: Any
) -> None:
    keycloak.route(path, answer(200, listed))
    assert run(call) == listed
    assert [(r.method, r.path) for r in admin_requests(keycloak)] == [("GET", path)]


@pytest.mark.parametrize(
    ("call", "query"),
    [
        (lambda a: a.find_user(username="Ada"), "username=Ada&exact=true"),
        (lambda a: a.find_user(email="ada@example.com"), "email=ada%40example.com&exact=true"),
    ],
)
def test_find_user_is_an_exact_match_or_none(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, query: str
) -> None:
    ada = {"id": "u-1", "username": "ada", "email": "ada@example.com"}
    adam = {"id": "u-2", "username": "adam", "email": "adam@example.com"}
    keycloak.route(USERS, answer(200, [adam, ada]))
    assert run(call) == ada  # Keycloak lowercases usernames and emails
    assert query in admin_requests(keycloak)[0].path
    keycloak.route(USERS, answer(200, [adam]))
    assert run(call) is None


def test_find_user_with_both_needs_both_to_match(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(USERS, answer(200, [{"id": "u-1", "username": "ada", "email": "x@example.com"}]))
    assert run(lambda a: a.find_user(username="ada", email="ada@example.com")) is None


@pytest.mark.parametrize(("name", "method"), [("assign", "POST"), ("remove", "DELETE")])
def test_realm_roles_are_given_by_name_and_sent_as_representations(
    keycloak: Loopback, run: Callable[[Call], Any], name: str, method: str
) -> None:
    path = f"{USERS}/u-1/role-mappings/realm"
    keycloak.route(path, answer(204))
    run(lambda a: getattr(a, f"{name}_realm_roles")("u-1", ["viewer", "editor", "viewer"]))
    lookup, write = admin_requests(keycloak)
    assert (lookup.method, lookup.path) == ("GET", "/admin/realms/demo/roles")
    assert (write.method, write.path) == (method, path)
    assert sent_json(write) == [ROLES[1], ROLES[0]]  # each once, in the order asked


def test_unknown_role_names_are_listed_and_nothing_is_written(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    with pytest.raises(ValueError, match="Unknown realm roles: 'admin', 'root'; the realm has"):
        run(lambda a: a.assign_realm_roles("u-1", ["editor", "admin", "root"]))
    assert [r.method for r in admin_requests(keycloak)] == ["GET"]


# --- Keycloak's refusals ----------------------------------------------------------------------


def test_409_is_a_conflict_with_keycloaks_message(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(USERS, answer(409, {"errorMessage": "User exists with same username"}))
    with pytest.raises(AdminConflictError) as info:
        run(lambda a: a.create_user({"username": "ada"}))
    error = info.value
    assert str(error) == f"POST {USERS}: HTTP 409 (User exists with same username)"
    assert error.error_message == "User exists with same username"
    assert (error.status, error.method, error.required_role) == (409, "POST", "manage-users")


def test_400_names_keycloaks_message_and_field_errors(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    words = "Invalid password: minimum length 12."
    policy = {"error": "invalidPasswordMinLengthMessage", "error_description": words}
    keycloak.route(f"{USERS}/u-1/reset-password", answer(400, policy))
    with pytest.raises(AdminBadRequestError) as info:
        run(lambda a: a.set_password("u-1", PASSWORD))
    assert str(info.value).endswith(f"HTTP 400 ({words})")
    assert info.value.error_message == words
    assert info.value.field_errors == []

    fields = {"errors": [
        {"field": "email", "errorMessage": "error-invalid-email", "params": ["email", "nope"]},
        {"field": "firstName", "errorMessage": "error-invalid-length-too-long", "params": []},
    ]}  # fmt: skip
    keycloak.route(USERS, answer(400, fields))
    with pytest.raises(AdminBadRequestError) as info:
        run(lambda a: a.create_user({"username": "ada", "email": "nope"}))
    assert str(info.value).endswith(
        "HTTP 400 (email: error-invalid-email; firstName: error-invalid-length-too-long)"
    )
    assert [(e.field, e.message, e.params) for e in info.value.field_errors] == [
        ("email", "error-invalid-email", ["email", "nope"]),
        ("firstName", "error-invalid-length-too-long", []),
    ]


@pytest.mark.parametrize(
    ("call", "path", "role"),
    [
        (lambda a: a.create_user({"username": "ada"}), USERS, "manage-users"),
        (lambda a: a.set_password("u-1", PASSWORD), f"{USERS}/u-1/reset-password", "manage-users"),
        (lambda a: a.create_group("staff"), GROUPS, "manage-users"),
        (lambda a: a.user_groups("u-1"), f"{USERS}/u-1/groups", "view-users"),
    ],
)
def test_403_names_the_role_the_write_needs(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, path: str, role: str
) -> None:
    keycloak.route(path, answer(403, {"error": "HTTP 403 Forbidden"}))
    with pytest.raises(AdminForbiddenError, match=f"realm-management role '{role}'"):
        run(call)


@pytest.mark.parametrize(
    "location",
    [
        None,
        "http://keycloak.test/admin/realms/master/users/u-1",
        "http://keycloak.test/admin/realms/demo/groups/u-1",
        "http://keycloak.test/admin/realms/demo/users/u-1/..",
        "http://keycloak.test/admin/realms/demo/users/",
    ],
)
def test_a_location_outside_the_realms_collection_is_not_trusted(
    keycloak: Loopback, run: Callable[[Call], Any], location: str | None
) -> None:
    keycloak.route(USERS, answer(201, **({"Location": location} if location else {})))
    with pytest.raises(AdminAPIError, match="the new id is unknown") as info:
        run(lambda a: a.create_user({"username": "ada"}))
    assert info.value.status == 201
    assert f"not in /admin/realms/demo/users: {location!r}" in str(info.value)


# --- refused before any request ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda a: a.create_user({"username": ""}), ValueError, "username must not be empty"),
        (lambda a: a.create_user({"email": "a@b.c"}), TypeError, "username must be a string"),
        (lambda a: a.create_user(["ada"]), TypeError, "a user representation is a dict"),
        (
            lambda a: a.create_user({"username": "ada", "credentials": ["pw"]}),
            TypeError,
            "a credential is a dict, not str",
        ),
        (lambda a: a.update_user("u-1", "ada"), TypeError, "a user representation is a dict"),
        (lambda a: a.update_user("u-1", {"username": " "}), ValueError, "must not be empty"),
        (lambda a: a.delete_user(""), ValueError, "empty path segment"),
        (lambda a: a.delete_user(".."), ValueError, "leaves the realm"),
        (lambda a: a.set_password("u-1", ""), ValueError, "the password is empty"),
        (lambda a: a.set_password("u-1", b"bytes"), TypeError, "a password is a str, not bytes"),
        (lambda a: a.create_group(""), ValueError, "a group name must not be empty"),
        (lambda a: a.find_user(), TypeError, "find_user needs username= or email="),
        (lambda a: a.find_user(username=""), ValueError, "username must not be empty"),
        (lambda a: a.assign_realm_roles("u-1", "editor"), TypeError, r"\['editor'\], not"),
        (lambda a: a.assign_realm_roles("u-1", []), ValueError, "role_names is empty"),
        (lambda a: a.remove_realm_roles("u-1", [""]), ValueError, "a role name must not be"),
        (lambda a: a.assign_realm_roles("", ["editor"]), ValueError, "empty path segment"),
    ],
)
def test_bad_input_is_refused_before_any_request(
    keycloak: Loopback, run: Callable[[Call], Any], call: Call, error: type[Exception], words: str
) -> None:
    with pytest.raises(error, match=words):
        run(call)
    assert keycloak.received == []  # not even a token was asked for


# --- a write is sent once ---------------------------------------------------------------------


def hang_up(received: Received) -> Answer:
    raise ConnectionResetError("the connection dropped after the request arrived")


def test_a_write_cut_off_mid_request_is_not_retried_and_says_so(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(USERS, hang_up)
    with pytest.raises(AdminUnavailableError, match="cannot reach Keycloak") as info:
        run(lambda a: a.create_user({"username": "ada"}))
    assert "never retried automatically: it may have been applied" in str(info.value)
    assert [r.method for r in admin_requests(keycloak)] == ["POST"]  # sent once


def test_a_write_that_times_out_is_not_retried_and_says_so(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    def slow(received: Received) -> Answer:
        time.sleep(0.5)
        return answer(204)

    keycloak.route(f"{USERS}/u-1", slow)
    quick = {**settings.KEYCLOAK_JWT_AUTH, "TIMEOUT": 0.1}
    with override_settings(KEYCLOAK_JWT_AUTH=quick), pytest.raises(AdminUnavailableError) as info:
        run(lambda a: a.update_user("u-1", {"firstName": "Ada"}))
    assert "timed out; a write is never retried automatically" in str(info.value)
    assert [r.method for r in admin_requests(keycloak)] == ["PUT"]


def test_a_server_error_on_a_write_says_it_may_have_happened(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(f"{USERS}/u-1", answer(500, {"error": "unknown_error"}))
    with pytest.raises(AdminUnavailableError, match="may have been applied"):
        run(lambda a: a.delete_user("u-1"))
    assert len(admin_requests(keycloak)) == 1


def test_a_read_that_fails_does_not_talk_of_writes(
    keycloak: Loopback, run: Callable[[Call], Any]
) -> None:
    keycloak.route(f"{USERS}/u-1/groups", answer(500, {"error": "unknown_error"}))
    with pytest.raises(AdminUnavailableError) as info:
        run(lambda a: a.user_groups("u-1"))
    assert "write" not in str(info.value)


def test_a_401_on_a_write_is_retried_once_with_a_fresh_token(keycloak: Loopback) -> None:
    """A 401 means Keycloak did not act on the request: resending it is safe."""
    answers = iter([answer(401), created(keycloak, USERS, "u-9")])
    keycloak.route(USERS, lambda received: next(answers))
    assert KeycloakAdmin().create_user({"username": "ada"}) == "u-9"
    posts = [r for r in admin_requests(keycloak) if r.method == "POST"]
    assert len(posts) == 2 and sent_json(posts[0]) == sent_json(posts[1])


# --- passwords stay hidden --------------------------------------------------------------------


def test_passwords_are_held_masked(keycloak: Loopback) -> None:
    assert PASSWORD not in repr(set_password("u-1", PASSWORD))
    credentials: list[CredentialRepresentation] = [{"type": "password", "value": PASSWORD}]
    creating = create_user({"username": "ada", "credentials": credentials})
    assert PASSWORD not in repr(creating) and "'********'" in repr(creating)
    assert create_user({"username": "ada", "credentials": [{"type": "otp"}]}).body == {
        "username": "ada",
        "credentials": [{"type": "otp"}],  # no value: nothing to mask
    }
    keycloak.route(USERS, created(keycloak, USERS, "u-1"))
    KeycloakAdmin().create_user({"username": "ada", "credentials": credentials})
    assert sent_json(admin_requests(keycloak)[0])["credentials"][0]["value"] == PASSWORD
