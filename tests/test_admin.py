from __future__ import annotations

import inspect
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from django.conf import settings
from django.test import override_settings

from keycloak_jwt_auth import (
    AdminAPIError,
    AdminAuthenticationError,
    AdminBadRequestError,
    AdminForbiddenError,
    AdminNotFoundError,
    AdminUnavailableError,
    AsyncKeycloakAdmin,
    KeycloakAdmin,
    KeycloakUnavailableError,
)
from keycloak_jwt_auth.admin import admin_session, calls, realm_path

from .conftest import ADMIN_URL, token_body


@pytest.fixture
def admin_api(token_endpoint: Any) -> responses.RequestsMock:
    mocked = token_endpoint(token_body("admin-token"), token_body("second-token"))
    assert isinstance(mocked, responses.RequestsMock)
    return mocked


def last_call(mocked: responses.RequestsMock) -> tuple[str, dict[str, list[str]], str]:
    request = mocked.calls[-1].request
    parts = urlsplit(str(request.url))
    return parts.path, parse_qs(parts.query), request.headers["Authorization"]


@pytest.mark.parametrize(
    ("call", "path", "params", "answer"),
    [
        (
            lambda a: a.users(),
            "/users",
            {"first": ["0"], "max": ["100"], "briefRepresentation": ["false"]},
            [],
        ),
        (
            lambda a: a.users(search="ada", first=10, max=5, brief=True),
            "/users",
            {"search": ["ada"], "first": ["10"], "max": ["5"], "briefRepresentation": ["true"]},
            [],
        ),
        (lambda a: a.users_count(search="lo"), "/users/count", {"search": ["lo"]}, 7),
        (lambda a: a.user("1234"), "/users/1234", {}, {"id": "1234"}),
        (
            lambda a: a.groups(search="ops"),
            "/groups",
            {"search": ["ops"], "first": ["0"], "max": ["100"]},
            [],
        ),
        (
            lambda a: a.group_members("g1", max=3),
            "/groups/g1/members",
            {"first": ["0"], "max": ["3"]},
            [],
        ),
        (lambda a: a.realm_roles(), "/roles", {}, []),
        (
            lambda a: a.clients(client_id="django-service"),
            "/clients",
            {"clientId": ["django-service"]},
            [],
        ),
        (lambda a: a.realm(), "", {}, {"realm": "demo"}),
        (lambda a: a.get("users/profile", x=1), "/users/profile", {"x": ["1"]}, {}),
    ],
)
def test_method_urls_and_params(
    admin_api: responses.RequestsMock, call: Any, path: str, params: dict[str, Any], answer: Any
) -> None:
    admin_api.get(f"{ADMIN_URL}{path}", json=answer)
    assert call(KeycloakAdmin()) == answer
    sent_path, sent_params, authorization = last_call(admin_api)
    assert sent_path == f"/admin/realms/demo{path}"
    assert sent_params == params
    assert authorization == "Bearer admin-token"


def test_ids_are_quoted_and_cannot_leave_the_realm(admin_api: responses.RequestsMock) -> None:
    # A '/' in an id is refused, not quoted: a proxy that decodes %2F would climb (issue 18).
    for climbing in ("../../master", "..%2F..%2Fmaster", "u/groups/g", "u%252Fgroups"):
        with pytest.raises(ValueError, match="leaves the realm"):
            KeycloakAdmin().user(climbing)
    assert not admin_api.calls
    assert realm_path("groups", "a b?c#d", "members") == "/groups/a%20b%3Fc%23d/members"
    with pytest.raises(ValueError, match="leaves the realm"):
        KeycloakAdmin().get("users/../../master")


def test_query_values_are_params_not_url_text(admin_api: responses.RequestsMock) -> None:
    admin_api.get(f"{ADMIN_URL}/users", json=[])
    KeycloakAdmin().users(search="a&max=1000#")
    _, params, _ = last_call(admin_api)
    assert params["search"] == ["a&max=1000#"] and params["max"] == ["100"]


def test_iter_users_pages_until_a_short_page(admin_api: responses.RequestsMock) -> None:
    pages = [[{"id": str(i)} for i in range(n, n + 2)] for n in (0, 2)] + [[{"id": "4"}]]
    for page in pages:
        admin_api.get(f"{ADMIN_URL}/users", json=page)
    assert [u["id"] for u in KeycloakAdmin().iter_users(page_size=2)] == ["0", "1", "2", "3", "4"]
    firsts = [parse_qs(urlsplit(str(c.request.url)).query)["first"] for c in admin_api.calls[1:]]
    assert firsts == [["0"], ["2"], ["4"]]


def test_iter_users_stops_on_an_exactly_full_last_page(admin_api: responses.RequestsMock) -> None:
    admin_api.get(f"{ADMIN_URL}/users", json=[{"id": "a"}, {"id": "b"}])
    admin_api.get(f"{ADMIN_URL}/users", json=[])
    assert len(list(KeycloakAdmin().iter_users(page_size=2))) == 2
    assert len(admin_api.calls) == 1 + 2


@pytest.mark.parametrize(
    ("call", "path", "role"),
    [
        (lambda a: a.users(), "/users", "view-users"),
        (lambda a: a.realm_roles(), "/roles", "view-realm"),
        (lambda a: a.realm(), "", "view-realm"),
        (lambda a: a.clients(), "/clients", "view-clients"),
        (lambda a: a.groups(), "/groups", "query-groups"),
        (lambda a: a.group_members("g"), "/groups/g/members", "view-users"),
    ],
)
def test_403_names_the_missing_role(
    admin_api: responses.RequestsMock, call: Any, path: str, role: str
) -> None:
    admin_api.get(f"{ADMIN_URL}{path}", json={"error": "HTTP 403 Forbidden"}, status=403)
    with pytest.raises(AdminForbiddenError) as info:
        call(KeycloakAdmin())
    error = info.value
    assert (error.status, error.method, error.required_role) == (403, "GET", role)
    assert error.path == f"/admin/realms/demo{path}"
    assert f"realm-management role '{role}'" in str(error)
    assert error.body == {"error": "HTTP 403 Forbidden"}


def test_401_twice_is_an_authentication_error(admin_api: responses.RequestsMock) -> None:
    admin_api.get(f"{ADMIN_URL}/users", status=401)
    with pytest.raises(AdminAuthenticationError):
        KeycloakAdmin().users()
    authorizations = [
        c.request.headers.get("Authorization")
        for c in admin_api.calls
        if "/admin/" in str(c.request.url)
    ]
    assert authorizations == ["Bearer admin-token", "Bearer second-token"]


def test_404_and_other_statuses(admin_api: responses.RequestsMock) -> None:
    admin_api.get(f"{ADMIN_URL}/users/nope", json={"error": "User not found"}, status=404)
    with pytest.raises(AdminNotFoundError, match="User not found"):
        KeycloakAdmin().user("nope")
    admin_api.get(f"{ADMIN_URL}/users/bad", json={"errorMessage": "bad id"}, status=400)
    with pytest.raises(AdminBadRequestError, match="HTTP 400 \\(bad id\\)"):
        KeycloakAdmin().user("bad")
    admin_api.get(f"{ADMIN_URL}/users/tea", json={"errorMessage": "teapot"}, status=418)
    with pytest.raises(AdminAPIError, match="HTTP 418 \\(teapot\\)") as info:
        KeycloakAdmin().user("tea")
    assert type(info.value) is AdminAPIError


def test_server_errors_and_connection_failures_are_unavailable(
    admin_api: responses.RequestsMock,
) -> None:
    admin_api.get(f"{ADMIN_URL}/users", body="<html>oops</html>", status=502)
    with pytest.raises(AdminUnavailableError) as info:
        KeycloakAdmin().users()
    assert info.value.status == 502 and info.value.body == "<html>oops</html>"
    assert isinstance(info.value, KeycloakUnavailableError)
    admin_api.replace(responses.GET, f"{ADMIN_URL}/users", body=requests.ConnectionError("down"))
    with pytest.raises(AdminUnavailableError, match="cannot reach Keycloak: down"):
        KeycloakAdmin().users()
    admin_api.replace(responses.GET, f"{ADMIN_URL}/users", body=requests.ReadTimeout("slow"))
    with pytest.raises(AdminUnavailableError, match="timed out"):
        KeycloakAdmin().users()


def test_html_on_success_is_an_error(admin_api: responses.RequestsMock) -> None:
    admin_api.get(
        f"{ADMIN_URL}/users", body="<html>login</html>", status=200, content_type="text/html"
    )
    with pytest.raises(AdminAPIError, match="not JSON"):
        KeycloakAdmin().users()


def test_one_session_per_client_and_process() -> None:
    assert KeycloakAdmin().session is KeycloakAdmin().session is admin_session("default")
    assert repr(KeycloakAdmin()) == "KeycloakAdmin(client='default', realm='demo')"


def test_timeouts_and_verify_are_passed(sent_kwargs: dict[str, Any]) -> None:
    with pytest.raises(AdminUnavailableError):
        KeycloakAdmin().users()
    assert (sent_kwargs["timeout"], sent_kwargs["verify"]) == ((5.0, 10.0), True)


@pytest.mark.parametrize(
    ("call", "path", "answer", "expected"),
    [
        (lambda a: a.users(), "/users", {"id": "1"}, "a JSON list"),
        (lambda a: a.user("1"), "/users/1", [{"id": "1"}], "a JSON dict"),
        (lambda a: a.users_count(), "/users/count", {"count": 3}, "a JSON int"),
    ],
)
def test_json_of_the_wrong_kind_is_an_error(
    admin_api: responses.RequestsMock, call: Any, path: str, answer: Any, expected: str
) -> None:
    admin_api.get(f"{ADMIN_URL}{path}", json=answer)
    with pytest.raises(AdminAPIError, match=f"where {expected} was expected") as info:
        call(KeycloakAdmin())
    assert info.value.status == 200 and info.value.body == answer


def test_a_settings_change_replaces_the_pooled_sessions() -> None:
    before = admin_session("default")
    with override_settings(KEYCLOAK_JWT_AUTH={**settings.KEYCLOAK_JWT_AUTH, "REALM": "other"}):
        during = admin_session("default")
        assert KeycloakAdmin().config.realm == "other"
    assert during is not before
    assert admin_session("default") is not during


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.get("%2e%2e/master/users"),
        lambda a: a.get("%2E%2E/%2e%2E/master"),
        lambda a: a.get("users/%2e"),
        lambda a: a.get("users/..%5c..%5cmaster"),
        lambda a: a.get("users/../../master"),
        lambda a: a.user(".."),
        lambda a: a.user("."),
        lambda a: a.group_members("%2e%2e"),
    ],
)
def test_no_path_leaves_the_realm_however_it_is_encoded(
    admin_api: responses.RequestsMock, call: Any
) -> None:
    with pytest.raises(ValueError, match="leaves the realm"):
        call(KeycloakAdmin())
    assert not [c for c in admin_api.calls if "/admin/" in str(c.request.url)]  # nothing sent


def test_iter_users_refuses_a_page_size_that_would_loop_forever() -> None:
    with pytest.raises(ValueError, match="page_size must be at least 1"):
        next(KeycloakAdmin().iter_users(page_size=0))


@pytest.mark.parametrize("name", ["users", "user", "set_password", "create_group", "realm"])
def test_both_clients_show_each_builders_signature_and_docstring(name: str) -> None:
    build = getattr(calls, name)
    parameters = list(inspect.signature(build).parameters)
    sync, asynchronous = getattr(KeycloakAdmin(), name), getattr(AsyncKeycloakAdmin(), name)
    assert list(inspect.signature(sync).parameters) == parameters
    assert list(inspect.signature(asynchronous).parameters) == parameters
    assert sync.__doc__ == asynchronous.__doc__ == build.__doc__
    assert inspect.iscoroutinefunction(asynchronous) and not inspect.iscoroutinefunction(sync)


def test_both_clients_methods_return_the_calls_answer() -> None:
    assert inspect.signature(KeycloakAdmin().users_count).return_annotation is int
    assert inspect.signature(AsyncKeycloakAdmin().delete_user).return_annotation is None
