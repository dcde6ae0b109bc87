"""The contenders, each reduced to one operation: produce the ``Authorization`` header value for a
request, fetching or renewing the token the way that library does.

Each is built the way its documentation suggests, once per process, then shared by the
process's threads (as a module-level client in a web worker would be).
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import requests

from keycloak_jwt_auth.client_auth import ASSERTION_TYPE, new_jti

from .shared_cache import cache_kind, configure

SERVER_URL = os.environ.get(
    "KEYCLOAK_SERVER_URL", f"http://127.0.0.1:{os.environ.get('KEYCLOAK_PORT', '8080')}"
)
REALM = "demo"
ISSUER = f"{SERVER_URL}/realms/{REALM}"
TOKEN_ENDPOINT = f"{ISSUER}/protocol/openid-connect/token"
PROBE_URL = "http://bench.invalid/resource"  # never sent: headers are produced, not requests


@dataclass
class Peer:
    name: str
    header: Callable[[], str]
    note: str = ""
    fetches: Callable[[], int] | None = None  # token requests made so far (this app only)


def assertion_by_hand(client_id: str, secret: str, issuer: str = ISSUER) -> str:
    """A client_secret_jwt assertion for the peers that cannot make one themselves."""
    now = int(time.time())
    claims = {
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + 60,
        "jti": new_jti(),
    }
    return jwt.encode(claims, secret.encode(), algorithm="HS256")


def configure_django(
    cache_url: str,
    client_id: str,
    secret: str,
    overrides: dict[str, Any] | None = None,
    database_url: str = "",
) -> None:
    """Settings for a benchmark or worker process (no project needed); ``database_url`` for a
    database cache (``dbcache://TABLE``), whose table must exist already."""
    configure(
        cache_url,
        database_url,
        INSTALLED_APPS=["keycloak_jwt_auth"],
        KEYCLOAK_JWT_AUTH={
            "SERVER_URL": SERVER_URL,
            "REALM": REALM,
            "CLIENT_ID": client_id,
            "CLIENT_SECRET": secret,
            **(overrides or {}),
        },
    )


def this_app(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    configure_django(
        cache_url, client_id, secret, options.get("overrides"), options.get("database_url", "")
    )
    from keycloak_jwt_auth import get_access_token, get_token_manager

    def header() -> str:
        return f"Bearer {get_access_token()}"  # the public API, as user code calls it

    def fetches() -> int:
        return get_token_manager().fetch_count

    return Peer(f"keycloak_jwt_auth ({cache_kind(cache_url)})", header, fetches=fetches)


def requests_oauth2client(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    from requests_oauth2client import ClientSecretJwt, OAuth2Client, OAuth2ClientCredentialsAuth

    client = OAuth2Client(  # testing=True: it refuses http:// URLs otherwise (ours is loopback)
        TOKEN_ENDPOINT, auth=ClientSecretJwt(client_id, secret, aud=ISSUER), testing=True
    )
    leeway = options.get("leeway")
    auth = OAuth2ClientCredentialsAuth(client, **({} if leeway is None else {"leeway": leeway}))
    request = requests.Request("GET", PROBE_URL).prepare()

    def header() -> str:
        return str(auth(request).headers["Authorization"])

    suffix = "" if leeway is None else f" (leeway {leeway} s)"
    return Peer(f"requests-oauth2client{suffix}", header)


def authlib_client(kind: Callable[..., Any], client_id: str, secret: str, leeway: Any) -> Any:
    """An Authlib client (``OAuth2Session`` or ``AsyncOAuth2Client``) for client_credentials
    with its registered ``ClientSecretJWT``; ``leeway`` None keeps Authlib's default."""
    from authlib.oauth2.rfc7523 import ClientSecretJWT

    client = kind(
        client_id,
        secret,
        token_endpoint_auth_method="client_secret_jwt",
        token_endpoint=TOKEN_ENDPOINT,
        grant_type="client_credentials",
        **({} if leeway is None else {"leeway": leeway}),
    )
    client.register_client_auth_method(ClientSecretJWT(ISSUER))
    return client


def authlib_name(leeway: Any) -> str:
    return "authlib" + ("" if leeway is None else f" (leeway {leeway} s)")


def authlib(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    from authlib.integrations.requests_client import OAuth2Session

    leeway = options.get("leeway")
    session = authlib_client(OAuth2Session, client_id, secret, leeway)
    session.fetch_token(TOKEN_ENDPOINT, grant_type="client_credentials")
    request = requests.Request("GET", PROBE_URL).prepare()

    def header() -> str:
        return str(session.token_auth(request).headers["Authorization"])

    return Peer(authlib_name(leeway), header)


def python_keycloak_connection(
    server_url: str, client_id: str, secret: str, *, fetch_now: bool = True
) -> Any:
    """python-keycloak has no client_secret_jwt: its token calls (``token`` and the async
    ``a_token``) get the assertion fields by hand (a fresh assertion each time), so it can use
    the same Keycloak client as the others. ``fetch_now`` False leaves it without a token (cold)."""
    from keycloak import KeycloakOpenIDConnection

    connection = KeycloakOpenIDConnection(
        server_url=server_url,
        realm_name=REALM,
        client_id=client_id,
        grant_type="client_credentials",
        timeout=10,
    )
    openid = connection.keycloak_openid
    issuer = f"{server_url}/realms/{REALM}"
    # python-keycloak has no hook for client assertions: wrap its token calls on this instance.
    openid.token = with_assertion(openid.token, client_id, secret, issuer)  # type: ignore[method-assign]
    openid.a_token = with_assertion(openid.a_token, client_id, secret, issuer)  # type: ignore[method-assign]
    if fetch_now:
        connection.get_token()
    return connection


def with_assertion(token_call: Callable[..., Any], client_id: str, secret: str, issuer: str) -> Any:
    """``token_call`` (sync, or async: the coroutine is passed through) with a fresh
    client_secret_jwt assertion in its form."""

    def token_with_assertion(*args: Any, **kwargs: Any) -> Any:
        assertion = assertion_by_hand(client_id, secret, issuer)
        return token_call(
            *args, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion, **kwargs
        )

    return token_with_assertion


def python_keycloak(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    connection = python_keycloak_connection(SERVER_URL, client_id, secret)

    def header() -> str:
        connection._refresh_if_required()  # what each of its admin calls does first
        return str(connection.headers["Authorization"])

    return Peer("python-keycloak", header, note="assertion fields added by hand")


def naive(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    """The baseline: a new assertion and a token request for every call."""
    session = requests.Session()

    def header() -> str:
        form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion_by_hand(client_id, secret),
        }
        answer = session.post(TOKEN_ENDPOINT, data=form, timeout=10)
        answer.raise_for_status()
        return f"Bearer {answer.json()['access_token']}"

    return Peer("naive (token per call)", header)


def this_app_dpop(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    """This app with a DPoP-bound token (``DPOP_KEY`` in the overrides): each call lists one
    user through the real Admin API with a fresh proof, so every header it reports is one that
    Keycloak accepted."""
    app = this_app(cache_url, client_id, secret, **options)
    from keycloak_jwt_auth import auth_headers

    session = requests.Session()
    url = f"{SERVER_URL}/admin/realms/{REALM}/users?max=1"

    def header() -> str:
        headers = auth_headers("GET", url)
        session.get(url, headers=headers, timeout=10).raise_for_status()
        return headers["Authorization"]

    return Peer(f"{app.name} with DPoP, Admin API calls", header, fetches=app.fetches)


EXCHANGE_AUDIENCES = ("billing-api", "reports-api")  # the demo realm's exchange audiences


def this_app_audiences(cache_url: str, client_id: str, secret: str, **options: Any) -> Peer:
    """This app asking for tokens exchanged for each of ``EXCHANGE_AUDIENCES`` in turn (and
    never for the client's own: it is only their subject); ``fetches`` counts exchanges."""
    this_app(cache_url, client_id, secret, **options)
    from keycloak_jwt_auth import get_access_token
    from keycloak_jwt_auth.clients import clients

    turns = itertools.cycle(EXCHANGE_AUDIENCES)

    def header() -> str:
        return f"Bearer {get_access_token(audience=next(turns))}"

    def fetches() -> int:
        return sum(clients["default"].manager_for(a).fetch_count for a in EXCHANGE_AUDIENCES)

    return Peer("keycloak_jwt_auth (token exchange)", header, fetches=fetches)


PEERS: dict[str, Callable[..., Peer]] = {
    "app": this_app,
    "app-audiences": this_app_audiences,
    "app-dpop": this_app_dpop,
    "requests-oauth2client": requests_oauth2client,
    "requests-oauth2client-leeway3": functools.partial(requests_oauth2client, leeway=3),
    "authlib": authlib,
    "authlib-leeway3": functools.partial(authlib, leeway=3),
    "python-keycloak": python_keycloak,
    "naive": naive,
}
