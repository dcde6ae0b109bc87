"""The sweep (issue 18): every public entry point called with hostile inputs while secrets are
planted everywhere; every error it raises is rendered by Django's ExceptionReporter (HTML and
text, DEBUG on and off) and scanned for each planted value.

Entry points: the Python API, each method of both Admin API clients (``AdminCalls``, iterated,
and the methods composed of them), the auths, the views, the commands, and every settings key
of a secret client and of a key client. Inputs: Hypothesis strategies for ids, representations
and settings values of any JSON-ish type, plus the values past reviews found trouble with.
"""

from __future__ import annotations

import asyncio
import inspect
import io
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import call_command
from django.test import RequestFactory, override_settings
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from keycloak_jwt_auth import (
    AsyncKeycloakAdmin,
    HttpxServiceAccountAuth,
    KeycloakAdmin,
    KeycloakJWTAuthError,
    ServiceAccountAuth,
    aauth_headers,
    aget_access_token,
    auth_headers,
    get_access_token,
    get_token_manager,
    views,
)
from keycloak_jwt_auth.admin.clients import AdminCalls, Endpoint
from keycloak_jwt_auth.settings.defaults import CLIENT_KEYS

from .keyring import pem
from .loopback import Answer, Loopback
from .reports import ExcInfo, failure, rendered

# Planted at import, never written in this file's source (error pages show source lines).
SECRET = f"sweep-secret-{secrets.token_hex(16)}"
FALLBACK = f"sweep-fallback-{secrets.token_hex(16)}"
PASSWORD = f"sweep-password-{secrets.token_hex(8)}"
TOKEN = f"sweep-token-{secrets.token_hex(16)}"
KEY = pem("ES256", 5)
DPOP_KEY = pem("ES256", 6)
PLANTED = [SECRET, FALLBACK, PASSWORD, TOKEN, *KEY.splitlines()[1:-1], *DPOP_KEY.splitlines()[1:-1]]
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+")  # an assertion (or any JWT)
TOKEN_PATH = "/realms/demo/protocol/openid-connect/token"


# CI runs a fixed sample (derandomized); SWEEP_SCALE=10 explores ten times as many, at random.
SCALE = int(os.environ.get("SWEEP_SCALE", "1"))


def swept(examples: int) -> hypothesis_settings:
    return hypothesis_settings(
        max_examples=examples * SCALE,
        derandomize=SCALE == 1,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# --- hostile inputs ------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.binary(max_size=8),
)
json_ish = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)
tricky_texts = st.sampled_from(
    ["", " ", ".", "..", "%2e%2e", "a/b", "a%2Fb", "a%252Fb", "a\\b", "\x00", "\udc80", "\x1b[2J"]
)
ids = st.one_of(tricky_texts, st.text(max_size=12), json_ish)
passwords = st.sampled_from([PASSWORD, PASSWORD.encode(), [PASSWORD], {"value": PASSWORD}])
credentials = st.fixed_dictionaries(
    {"type": st.just("password")},
    optional={"value": passwords, "secretData": passwords, "temporary": json_ish},
)
representations = st.one_of(
    st.fixed_dictionaries(
        {"credentials": st.one_of(st.lists(credentials, max_size=2), passwords)},
        optional={"username": ids, "email": ids, "attributes": json_ish},
    ),
    json_ish,
)
settings_values = st.one_of(
    json_ish,
    tricky_texts,
    st.sampled_from(["https://[host", 10**400, float("nan"), "text\udc80", "http://127.0.0.1:9"]),
)
# A secret setting holds the planted secret, in any shape.
secret_values = st.one_of(
    st.sampled_from([SECRET + "\udc80", SECRET.encode(), [SECRET, 1], (SECRET,), {"a": SECRET}]),
    st.sampled_from([SECRET + " ", [SECRET.encode()], 10**400]),
    settings_values,
)
SECRET_KEYS = ("CLIENT_SECRET", "FALLBACK_SECRETS", "PRIVATE_KEY", "NEXT_PRIVATE_KEY", "DPOP_KEY")


# --- the app, with secrets planted everywhere --------------------------------------------------


@pytest.fixture(scope="module")
def keycloak() -> Iterator[Loopback]:
    """Token endpoint: a token; anything else: 404."""
    with Loopback() as server:
        body = {"access_token": TOKEN, "expires_in": 300, "token_type": "Bearer"}
        server.route(TOKEN_PATH, Answer(200, json.dumps(body).encode()))
        yield server


def planted_settings(server_url: str) -> dict[str, Any]:
    keys = {
        "AUTH_METHOD": "private_key_jwt",
        "ALGORITHM": "ES256",
        "PRIVATE_KEY": KEY,
        "CLIENT_ID": "django-keys",
        "CLIENT_SECRET": None,
        "FALLBACK_SECRETS": (),
    }
    return {
        **settings.KEYCLOAK_JWT_AUTH,
        "SERVER_URL": server_url,
        "CLIENT_SECRET": SECRET,
        "FALLBACK_SECRETS": [FALLBACK],
        # A DPoP client: the stand-in Keycloak answers it a Bearer token, which it must refuse.
        "CLIENTS": {"keys": keys, "dpop": {"DPOP_KEY": DPOP_KEY}},
    }


@pytest.fixture
def app(keycloak: Loopback) -> Iterator[dict[str, Any]]:
    conf = planted_settings(keycloak.url)
    with override_settings(KEYCLOAK_JWT_AUTH=conf, KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS=True):
        yield conf


def assert_clean(exc_info: ExcInfo | None, *texts: str) -> None:
    """No planted value (and no JWT) in any report of the failure, nor in ``texts``."""
    reports = [*(rendered(exc_info) if exc_info else []), *texts]
    for report in reports:
        shown = [value for value in PLANTED if value in report]
        assert not shown, f"planted values shown: {shown}"
        assert not JWT.search(report), "a JWT is shown"


class Sealed:
    """Planted input for a call: the test's own frames are on the error page as well."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "<sealed>"


def sweep(action: Callable[[], Any]) -> ExcInfo | None:
    exc_info = failure(action)
    assert_clean(exc_info)
    return exc_info


# --- the Admin API: every method of both clients ----------------------------------------------

ENDPOINTS = sorted(name for name, value in vars(AdminCalls).items() if isinstance(value, Endpoint))
COMPOSED = ["find_user", "assign_realm_roles", "remove_realm_roles", "iter_users"]


def arguments_for(
    method: Callable[..., Any],
) -> st.SearchStrategy[tuple[list[Any], dict[str, Any]]]:
    """Hostile arguments for each parameter of ``method``, by what the parameter holds."""
    positional: list[st.SearchStrategy[Any]] = []
    keywords: dict[str, st.SearchStrategy[Any]] = {}
    for name, parameter in inspect.signature(method).parameters.items():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        strategy = {"password": passwords, "representation": representations}.get(name, ids)
        if name == "role_names":
            strategy = st.lists(ids, max_size=2) | ids
        if parameter.kind is parameter.KEYWORD_ONLY:
            keywords[name] = strategy
        else:
            positional.append(strategy)
    return st.tuples(st.tuples(*positional).map(list), st.fixed_dictionaries({}, optional=keywords))


def test_the_sweep_covers_every_admin_call() -> None:
    assert len(ENDPOINTS) >= 20 and "set_password" in ENDPOINTS and "create_user" in ENDPOINTS


@swept(100)
@given(
    data=st.data(),
    name=st.sampled_from(ENDPOINTS + COMPOSED),
    kind=st.sampled_from(["sync", "async"]),
)
def test_admin_calls_with_hostile_input(
    app: Any, data: st.DataObject, name: str, kind: str
) -> None:
    admin: Any = KeycloakAdmin() if kind == "sync" else AsyncKeycloakAdmin()
    method = getattr(admin, "aiter_users" if kind == "async" and name == "iter_users" else name)
    given_ = Sealed(data.draw(arguments_for(method)))  # this frame is on the page too

    def call() -> Any:  # no local holds the input: it is unpacked into the call itself
        if name == "iter_users" and kind == "async":
            return None  # an async iterator: its pages are users(), swept above
        if name == "iter_users":
            return next(iter(method(*given_.value[0], **given_.value[1])))
        result = method(*given_.value[0], **given_.value[1])
        return asyncio.run(result) if kind == "async" else result

    sweep(call)


# --- the Python API and the auths -------------------------------------------------------------

API: dict[str, Callable[[Any], Any]] = {  # the auths call an API that answers 404
    "get_access_token": lambda client: get_access_token(client),
    "aget_access_token": lambda client: asyncio.run(aget_access_token(client)),
    "get_token_manager": lambda client: get_token_manager(client).get_token(),
    "auth_headers": lambda client: auth_headers("GET", "https://api.test/x", client=client),
    "aauth_headers": lambda client: asyncio.run(
        aauth_headers("GET", "https://api.test/x", client=client)
    ),
    "KeycloakAdmin": lambda client: KeycloakAdmin(client).users(),
    "AsyncKeycloakAdmin": lambda client: asyncio.run(AsyncKeycloakAdmin(client).users()),
    "ServiceAccountAuth": lambda client: requests.get(
        str(settings.KEYCLOAK_JWT_AUTH["SERVER_URL"]), auth=ServiceAccountAuth(client), timeout=5
    ),
    "HttpxServiceAccountAuth": lambda client: httpx.get(
        str(settings.KEYCLOAK_JWT_AUTH["SERVER_URL"]),
        auth=HttpxServiceAccountAuth(client),
        timeout=5,
    ),
}


@swept(40)
@given(
    entry=st.sampled_from(sorted(API)),
    client=st.one_of(st.sampled_from(["default", "keys", "dpop"]), ids),
)
def test_the_python_api_and_the_auths(app: Any, entry: str, client: Any) -> None:
    sweep(lambda: API[entry](client))


# ``audience=`` (issue 22): any value, on every entry point that takes it.
AUDIENCE_API: dict[str, Callable[[Any], Any]] = {
    "get_access_token": lambda audience: get_access_token(audience=audience),
    "aget_access_token": lambda audience: asyncio.run(aget_access_token(audience=audience)),
    "auth_headers": lambda audience: auth_headers("GET", "https://api.test/x", audience=audience),
    "aauth_headers": lambda audience: asyncio.run(
        aauth_headers("GET", "https://api.test/x", audience=audience)
    ),
    "ServiceAccountAuth": lambda audience: requests.get(
        str(settings.KEYCLOAK_JWT_AUTH["SERVER_URL"]),
        auth=ServiceAccountAuth(audience=audience),
        timeout=5,
    ),
    "HttpxServiceAccountAuth": lambda audience: httpx.get(
        str(settings.KEYCLOAK_JWT_AUTH["SERVER_URL"]),
        auth=HttpxServiceAccountAuth(audience=audience),
        timeout=5,
    ),
}


@swept(20)
@given(entry=st.sampled_from(sorted(AUDIENCE_API)), audience=ids)
def test_the_python_api_and_the_auths_with_any_audience(
    app: Any, entry: str, audience: Any
) -> None:
    sweep(lambda: AUDIENCE_API[entry](audience))


# --- the settings: any value of any type for any key ------------------------------------------


# A drawn secret may be short: newer PyJWT warns about it, which is not what this sweep is about
# (tests/test_warnings_are_errors.py covers that warning made an error).
@pytest.mark.filterwarnings("ignore:The HMAC key is .* bytes long:UserWarning")
@swept(80)
@given(
    data=st.data(),
    key=st.sampled_from(sorted(CLIENT_KEYS)),
    client=st.sampled_from(["default", "keys"]),
)
def test_any_settings_value(
    app: dict[str, Any], data: st.DataObject, key: str, client: str
) -> None:
    value = Sealed(data.draw(secret_values if key in SECRET_KEYS else settings_values))
    conf = json.loads(json.dumps(app, default=str))  # a deep copy
    conf["CLIENTS"]["keys"]["PRIVATE_KEY"] = KEY
    target = conf if client == "default" else conf["CLIENTS"]["keys"]
    target[key] = value.value
    with override_settings(KEYCLOAK_JWT_AUTH=conf):
        checks = failure(lambda: run_checks(include_deployment_checks=True))
        assert checks is None, "a system check crashed instead of reporting"
        exc_info = sweep(lambda: get_access_token(client))
    if exc_info is not None:
        assert isinstance(exc_info[1], KeycloakJWTAuthError), repr(exc_info[0])


# --- the views and the commands -----------------------------------------------------------------

VIEWS = ["index", "api_users", "api_token", "async_api_users", "async_api_token"]


@swept(40)
@given(
    view=st.sampled_from(VIEWS),
    query=st.dictionaries(st.sampled_from(["search", "first", "max"]), st.text(max_size=8)),
)
def test_the_demo_views(app: Any, view: str, query: dict[str, str]) -> None:
    request = RequestFactory().get("/", query)
    request.user = type("Anonymous", (), {"is_active": False, "is_staff": False})()
    responses: list[Any] = []

    def render() -> None:
        response = getattr(views, view)(request)
        if inspect.iscoroutine(response):
            response = asyncio.run(response)
        responses.append(response)

    exc_info = sweep(render)
    if exc_info is None:
        assert_clean(None, responses[0].content.decode())


@swept(20)
@given(client=st.one_of(st.sampled_from(["reader", "django-keys"]), st.text(max_size=10)))
def test_the_jwks_view(app: Any, client: str) -> None:
    exc_info = sweep(lambda: views.jwks(RequestFactory().get("/"), client=client))
    assert exc_info is None


COMMANDS: dict[str, Callable[[str], list[str]]] = {
    "fetch_token": lambda client: ["fetch_token", "--client", client, "--json"],
    "keycloak_doctor": lambda client: ["keycloak_doctor", "--client", client],
    "keycloak_keys": lambda client: ["keycloak_keys", "jwks"],
    "keycloak_user set-password": lambda name: ["keycloak_user", "set-password", name],
    "keycloak_user create": lambda name: ["keycloak_user", "create", name, "--password"],
}


@swept(25)
@given(
    command=st.sampled_from(sorted(COMMANDS)),
    argument=st.one_of(tricky_texts, st.text(max_size=10)),
)
def test_the_commands(app: Any, command: str, argument: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    stdin = io.StringIO(PASSWORD + "\n")
    exc_info = sweep(
        lambda: call_command(*COMMANDS[command](argument), stdout=out, stderr=err, stdin=stdin)
    )
    assert_clean(
        None,
        out.getvalue().replace(TOKEN, "") if "fetch_token" in command else out.getvalue(),
        err.getvalue(),
    )
    del exc_info
