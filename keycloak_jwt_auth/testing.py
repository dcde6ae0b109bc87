"""``FakeKeycloak``: a Keycloak to test against without running one.

A real HTTP server on 127.0.0.1 in a thread, so ``requests``, ``httpx`` (sync and async) and
subprocesses reach it like the real thing. Its token endpoint checks client assertions as
Keycloak 26 does and refuses them with Keycloak's own ``error`` and ``error_description``:

- ``iss`` = ``sub`` = a known client (else 401); a form ``client_id`` must name the same client;
- ``alg`` allowed for the client (its signature algorithm, or any HMAC / asymmetric one);
- the signature: HMAC with the client's secret, or one of its public keys or its JWKS URL;
- one ``aud`` from the accepted set (issuer, token, PAR and CIBA endpoint URLs);
- ``exp`` required and not past (nor ``nbf`` ahead); ``iat`` at most 60 s old and at most 15 s
  ahead; ``jti`` required and single use.

It also serves the realm's discovery document and a small Admin API (the reads of
``KeycloakAdmin``) over an in-memory realm, answering 401/403/404 with Keycloak's bodies, and
it can fail on purpose (``fail("down" | "slow" | "5xx" | "html")``).

    with FakeKeycloak() as kc:
        kc.add_user("ada", email="ada@example.com")
        with override_settings(KEYCLOAK_JWT_AUTH=kc.settings()):
            ...
        assert kc.token_requests == 1

With pytest, the ``fake_keycloak`` fixture (``keycloak_jwt_auth.pytest_plugin``) does the same.
Private-key clients (``private_key_jwt``) need ``cryptography`` to verify their signatures.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
import requests

from .admin_api import ROLES_BY_RESOURCE
from .assertion import ASSERTION_TYPE

HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
KEY_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "EdDSA"),
)
READ_ROLES = ("view-users", "query-users", "view-realm", "query-groups", "view-clients")
MAX_ASSERTION_AGE = 60  # seconds an assertion's iat may lie in the past
FUTURE_LEEWAY = 15  # ... and in the future
FAULTS = ("down", "slow", "5xx", "html")
BRIEF_USER_KEYS = (
    *("id", "username", "firstName", "lastName", "email"),
    *("emailVerified", "enabled", "createdTimestamp"),
)


@dataclasses.dataclass
class FakeClient:
    """A confidential client with service accounts: a secret (``client_secret_jwt``) or public
    keys / a JWKS URL (``private_key_jwt``). ``algorithm`` is Keycloak's "Signature algorithm"
    attribute (None: any algorithm of the client's kind)."""

    client_id: str
    secret: str | None = dataclasses.field(default=None, repr=False)
    algorithm: str | None = "HS256"
    public_keys: list[Any] = dataclasses.field(default_factory=list)  # JWK dicts or PEM
    jwks_url: str | None = None
    private_key: str | None = dataclasses.field(default=None, repr=False)  # for settings()
    roles: tuple[str, ...] = READ_ROLES  # realm-management roles of its service account
    service_accounts: bool = True
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    user_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def uses_keys(self) -> bool:
        return self.secret is None

    def representation(self) -> dict[str, Any]:
        """As the Admin API shows it (``GET /clients``)."""
        attributes = {"token.endpoint.auth.signing.alg": self.algorithm or ""}
        if self.jwks_url:
            attributes |= {"use.jwks.url": "true", "jwks.url": self.jwks_url}
        return {
            "id": self.id,
            "clientId": self.client_id,
            "enabled": True,
            "publicClient": False,
            "serviceAccountsEnabled": self.service_accounts,
            "clientAuthenticatorType": "client-jwt" if self.uses_keys else "client-secret-jwt",
            "attributes": attributes,
        }


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, or bytes sent as they are
    content_type: str = "application/json"


class Refused(Exception):
    """An assertion refused: Keycloak's status, ``error`` and ``error_description``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.answer = _error(status, error, description)


def _error(status: int, error: str, description: str) -> Answer:
    return Answer(status, {"error": error, "error_description": description})


def _invalid(description: str) -> Refused:
    return Refused(400, "invalid_client", description)


UNKNOWN_CLIENT = Refused(401, "invalid_client", "Invalid client or Invalid client credentials")


class FakeKeycloak:
    """See the module's docstring. ``clients``: the realm's clients (default: one
    ``client_secret_jwt`` client ``django-service`` with a random secret and the Admin API's
    read roles)."""

    def __init__(
        self,
        *,
        realm: str = "demo",
        clients: list[FakeClient] | None = None,
        token_lifespan: int = 300,
    ) -> None:
        self.realm = realm
        self.token_lifespan = token_lifespan
        self.clients: dict[str, FakeClient] = {}
        for client in clients or [FakeClient("django-service", secret=secrets.token_urlsafe(32))]:
            self.add_client(client)
        self.users: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.realm_roles: list[dict[str, Any]] = [
            self._role(name) for name in ("offline_access", "uma_authorization")
        ] + [self._role(f"default-roles-{realm}")]
        self.received: list[tuple[str, str]] = []  # (method, path) of every request
        self.clock: Callable[[], float] = time.time  # Keycloak's clock, for skew tests
        self.slow_seconds = 3.0
        self._fault: tuple[str, int | None] | None = None
        self._key = secrets.token_bytes(32)  # signs the access tokens (HS256)
        self._used_jtis: dict[str, float] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._port = 0

    def __repr__(self) -> str:
        return f"<FakeKeycloak {self.url if self._port else '(stopped)'} realm={self.realm!r}>"

    # --- lifecycle -----------------------------------------------------------------------

    def __enter__(self) -> FakeKeycloak:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> FakeKeycloak:
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _handler(self))
        self._server.daemon_threads = True
        self._port = int(self._server.server_address[1])
        threading.Thread(
            target=self._server.serve_forever, name="fake-keycloak", daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.realm}"

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def token_requests(self) -> int:
        """POSTs to the token endpoint so far, refused ones included."""
        path = urlsplit(self.token_endpoint).path
        return sum(1 for method, p in list(self.received) if method == "POST" and p == path)

    # --- the realm -----------------------------------------------------------------------

    def add_client(self, client: FakeClient | str, **fields: Any) -> FakeClient:
        """Register a client (a ``FakeClient``, or a client id and its fields). A client with
        ``private_key`` and no public keys gets the private key's public half."""
        if isinstance(client, str):
            client = FakeClient(client, **fields)
        if client.private_key and not client.public_keys and not client.jwks_url:
            client.public_keys = [_public_pem(client.private_key)]
        self.clients[client.client_id] = client
        return client

    def client(self, client_id: str | None = None) -> FakeClient:
        return self.clients[client_id] if client_id else next(iter(self.clients.values()))

    def settings(self, client_id: str | None = None, **overrides: Any) -> dict[str, Any]:
        """A ``KEYCLOAK_JWT_AUTH`` dict for ``client_id`` (default: the first client) here."""
        client = self.client(client_id)
        own: dict[str, Any] = {
            "SERVER_URL": self.url,
            "REALM": self.realm,
            "CLIENT_ID": client.client_id,
        }
        if client.uses_keys:
            own |= {"AUTH_METHOD": "private_key_jwt", "PRIVATE_KEY": client.private_key}
            own["ALGORITHM"] = client.algorithm or "RS256"
        else:
            own |= {"CLIENT_SECRET": client.secret, "ALGORITHM": client.algorithm or "HS256"}
        return {**own, **overrides}

    def add_user(self, username: str, **fields: Any) -> dict[str, Any]:
        user = {
            "id": str(uuid.uuid4()),
            "username": username.lower(),
            "enabled": True,
            "emailVerified": False,
            "createdTimestamp": int(time.time() * 1000),
            **fields,
        }
        self.users.append(user)
        return user

    def add_group(self, name: str, *, members: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
        group = {"id": str(uuid.uuid4()), "name": name, "path": f"/{name}", "subGroupCount": 0}
        self.groups.append({**group, "members": [user["id"] for user in members]})
        return group

    @staticmethod
    def _role(name: str) -> dict[str, Any]:
        return {"id": str(uuid.uuid4()), "name": name, "composite": False, "clientRole": False}

    # --- faults --------------------------------------------------------------------------

    def fail(self, fault: str | None, *, status: int | None = None) -> None:
        """From now on: ``"down"`` (connections refused), ``"slow"`` (each answer waits
        ``slow_seconds``), ``"5xx"`` (503 with Keycloak's JSON error), ``"html"`` (an HTML page
        with ``status``, default 200, as a proxy or a login portal answers); None: healthy."""
        if fault is not None and fault not in FAULTS:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} or None, not {fault!r}")
        was_down = self._fault is not None and self._fault[0] == "down"
        self._fault = None if fault is None else (fault, status)
        if fault == "down" and not was_down:
            self.stop()
        elif fault != "down" and was_down:
            self.start()  # on the same port

    @contextlib.contextmanager
    def failing(self, fault: str, *, status: int | None = None) -> Iterator[FakeKeycloak]:
        """``fail(fault)`` for the ``with`` block, healthy again after it."""
        self.fail(fault, status=status)
        try:
            yield self
        finally:
            self.fail(None)

    def _faulty_answer(self) -> Answer | None:
        fault = self._fault
        if fault is None:
            return None
        kind, status = fault
        if kind == "slow":
            time.sleep(self.slow_seconds)
            return None
        if kind == "5xx":
            return Answer(status or 503, {"error": "unknown_error"})
        page = b"<!doctype html><html><body><h1>Sign in</h1></body></html>"
        return Answer(status or 200, page, "text/html;charset=utf-8")

    # --- the token endpoint --------------------------------------------------------------

    def token(self, form: Mapping[str, str]) -> Answer:
        if "grant_type" not in form:
            return _error(400, "invalid_request", "Missing form parameter: grant_type")
        try:
            client = self.authenticate(form)
        except Refused as refused:
            return refused.answer
        if form.get("grant_type") != "client_credentials":
            return _error(400, "unsupported_grant_type", "Unsupported grant_type")
        if not client.service_accounts:
            description = "Client not enabled to retrieve service account"
            return _error(400, "unauthorized_client", description)
        return Answer(200, self._token_response(client))

    def authenticate(self, form: Mapping[str, str]) -> FakeClient:
        """The client the form's assertion authenticates, or ``Refused`` as Keycloak 26 words
        it (its checks in its order)."""
        kind = form.get("client_assertion_type")
        if kind is None:
            raise _invalid("Parameter client_assertion_type is missing")
        if kind != ASSERTION_TYPE:
            raise _invalid(
                f"Parameter client_assertion_type has value '{kind}' but expected is "
                f"'{ASSERTION_TYPE}'"
            )
        assertion, named = form.get("client_assertion", ""), form.get("client_id")
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            if named in self.clients:
                raise _unauthorized(
                    self.clients[named], "java.lang.IllegalArgumentException: Parsing error"
                ) from None
            raise UNKNOWN_CLIENT from None
        client = self._claimed_client(claims, named)
        self._check_signature(client, header, assertion)
        self._check_claims(claims)
        return client

    def _claimed_client(self, claims: Mapping[str, Any], named: str | None) -> FakeClient:
        subject = claims.get("sub")
        if subject is None or claims.get("iss") != subject or subject not in self.clients:
            raise UNKNOWN_CLIENT
        if named is not None and named != subject:
            raise _invalid("client_id parameter does not match authenticated client")
        return self.clients[subject]

    def _check_signature(
        self, client: FakeClient, header: Mapping[str, Any], assertion: str
    ) -> None:
        algorithm = header.get("alg")
        allowed = (client.algorithm,) if client.algorithm else _algorithms_of(client)
        if algorithm not in allowed or algorithm not in _algorithms_of(client):
            raise _invalid("Invalid signature algorithm")
        keys = (
            [client.secret.encode()]
            if client.secret is not None
            else self._public_keys(client, header)
        )
        for key in keys:
            try:
                jwt.PyJWS().decode(assertion, key=key, algorithms=[algorithm])
                return
            except jwt.PyJWTError:
                continue
        raise _unauthorized(client, "Signature on JWT token failed validation")

    def _public_keys(self, client: FakeClient, header: Mapping[str, Any]) -> list[Any]:
        """The key Keycloak 26.7 would pick: the one named by the header's ``kid``, or without
        a kid the first of the algorithm (measured). Unlike Keycloak, the fake reads the JWKS
        URL on every request (Keycloak keeps what it read, re-reading at most every 10 s)."""
        jwks: list[Any] = list(client.public_keys)
        if client.jwks_url:
            try:
                jwks += requests.get(client.jwks_url, timeout=5).json().get("keys", [])
            except (requests.RequestException, ValueError, AttributeError) as exc:
                if not jwks:  # (public_keys stand for what Keycloak read before)
                    # Keycloak says so with the Java exception's text instead.
                    raise _invalid(f"Unable to load public key: {type(exc).__name__}") from None
        kid, algorithm = header.get("kid"), header.get("alg")
        # Pick as Keycloak does: a JWK by kid; without one, the first key of the algorithm.
        if kid is not None:  # a JWK with that kid (a PEM, having none, stands for any kid)
            named = [k for k in jwks if not isinstance(k, dict) or k.get("kid") == kid]
        else:
            named = [
                k for k in jwks if not isinstance(k, dict) or k.get("alg", algorithm) == algorithm
            ]
        if not named or (isinstance(named[0], dict) and named[0].get("use") not in (None, "sig")):
            raise _invalid("Unable to load public key")
        key = named[0]
        if isinstance(key, dict) and key.get("alg", algorithm) != algorithm:
            return []  # Keycloak verifies with the JWK's own alg: the signature fails
        return [jwt.PyJWK(key).key if isinstance(key, dict) else key]

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        now = self.clock()
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if len(audiences) > 1:
            raise _invalid("Multiple audiences not allowed")
        if audiences[0] not in self.accepted_audiences():
            raise _invalid("Invalid token audience")
        if "exp" not in claims:
            raise _invalid("Token exp claim is required")
        if claims["exp"] <= now or claims.get("nbf", now) > now:
            raise _invalid("Token is not active")
        issued_at = claims.get("iat")
        if issued_at is not None and now - issued_at > MAX_ASSERTION_AGE:
            raise _invalid("Token was issued too far in the past to be used now")
        if issued_at is not None and issued_at - now > FUTURE_LEEWAY:
            raise _invalid("Token was issued in the future")
        self._use_jti(claims.get("jti"), claims["exp"], now)

    def accepted_audiences(self) -> tuple[str, ...]:
        oidc = f"{self.issuer}/protocol/openid-connect"
        return (
            self.issuer,
            self.token_endpoint,
            f"{oidc}/ext/par/request",
            f"{oidc}/ext/ciba/auth",
        )

    def _use_jti(self, jti: Any, expires_at: float, now: float) -> None:
        if not jti:
            raise _invalid("Token jti claim is required")
        with self._lock:
            self._used_jtis = {j: exp for j, exp in self._used_jtis.items() if exp > now}
            if jti in self._used_jtis:
                raise _invalid("Token reuse detected")
            self._used_jtis[jti] = expires_at

    def _token_response(self, client: FakeClient) -> dict[str, Any]:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "exp": now + self.token_lifespan,
            "iat": now,
            "jti": f"trrtcc:{uuid.uuid4()}",
            "iss": self.issuer,
            "sub": client.user_id,
            "typ": "Bearer",
            "azp": client.client_id,
            "acr": "1",
            "scope": "email profile",
            "email_verified": False,
            "preferred_username": f"service-account-{client.client_id}",
        }
        if client.roles:
            claims["aud"] = "realm-management"
            claims["resource_access"] = {"realm-management": {"roles": list(client.roles)}}
        return {
            "access_token": jwt.encode(claims, self._key, algorithm="HS256"),
            "expires_in": self.token_lifespan,
            "refresh_expires_in": 0,
            "token_type": "Bearer",
            "not-before-policy": 0,
            "scope": "email profile",
        }

    def verify_token(self, token: str) -> dict[str, Any]:
        """The claims of an access token this fake issued; ``jwt.PyJWTError`` otherwise."""
        claims: dict[str, Any] = jwt.decode(
            token,
            self._key,
            algorithms=["HS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
        )
        if claims["exp"] <= self.clock():
            raise jwt.ExpiredSignatureError("Signature has expired")
        return claims

    # --- the Admin API -------------------------------------------------------------------

    def admin(self, method: str, path: str, query: Mapping[str, str], bearer: str) -> Answer:
        try:
            claims = self.verify_token(bearer)
        except jwt.PyJWTError:
            return Answer(401, {"error": "HTTP 401 Unauthorized"})
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        roles = claims.get("resource_access", {}).get("realm-management", {}).get("roles", [])
        for route_method, pattern, handler in ADMIN_ROUTES:
            match = re.fullmatch(pattern, "/".join(segments))
            if route_method == method and match:
                role = ROLES_BY_RESOURCE.get(segments[0] if segments else "", "view-realm")
                if role not in roles:
                    return Answer(403, {"error": "HTTP 403 Forbidden"})
                return handler(self, query, *match.groups())
        return Answer(404, {"error": "HTTP 404 Not Found"})

    def _realm(self, query: Mapping[str, str]) -> Answer:
        lifespan = self.token_lifespan
        return Answer(200, {"realm": self.realm, "enabled": True, "accessTokenLifespan": lifespan})

    def _users(self, query: Mapping[str, str]) -> Answer:
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        brief = query.get("briefRepresentation") == "true"
        found = self._matching_users(query)[first : first + size]
        return Answer(200, [_user_representation(u, brief=brief) for u in found])

    def _users_count(self, query: Mapping[str, str]) -> Answer:
        return Answer(200, len(self._matching_users(query)))

    def _user(self, query: Mapping[str, str], user_id: str) -> Answer:
        for user in self.users:
            if user["id"] == user_id:
                return Answer(200, _user_representation(user, brief=False))
        return Answer(404, {"error": "User not found"})

    def _matching_users(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        search = query.get("search", "").strip("*").lower()
        exact = query.get("exact") == "true"

        def matches(user: dict[str, Any]) -> bool:
            fields = ("username", "email", "firstName", "lastName")
            if search and not any(search in str(user.get(f, "")).lower() for f in fields):
                return False
            for key in ("username", "email", "firstName", "lastName"):
                wanted = query.get(key, "").lower()
                value = str(user.get(key, "")).lower()
                if wanted and (value != wanted if exact else wanted not in value):
                    return False
            return True

        return sorted(filter(matches, self.users), key=lambda u: u["username"])

    def _groups(self, query: Mapping[str, str]) -> Answer:
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        search = query.get("search", "").lower()
        found = [g for g in self.groups if search in g["name"].lower()][first : first + size]
        return Answer(200, [{k: v for k, v in g.items() if k != "members"} for g in found])

    def _group_members(self, query: Mapping[str, str], group_id: str) -> Answer:
        group = next((g for g in self.groups if g["id"] == group_id), None)
        if group is None:
            return Answer(404, {"error": "Could not find group by id"})
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        members = [u for u in self.users if u["id"] in group["members"]][first : first + size]
        return Answer(200, [_user_representation(u, brief=True) for u in members])

    def _roles(self, query: Mapping[str, str]) -> Answer:
        search = query.get("search", "").lower()
        return Answer(200, [r for r in self.realm_roles if search in r["name"].lower()])

    def _clients(self, query: Mapping[str, str]) -> Answer:
        wanted = query.get("clientId")
        found = [c for c in self.clients.values() if wanted in (None, c.client_id)]
        return Answer(200, [c.representation() for c in found])

    def discovery(self) -> dict[str, Any]:
        oidc = f"{self.issuer}/protocol/openid-connect"
        return {
            "issuer": self.issuer,
            "token_endpoint": self.token_endpoint,
            "jwks_uri": f"{oidc}/certs",
            "grant_types_supported": ["client_credentials"],
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": [*KEY_ALGORITHMS, *HMAC_ALGORITHMS],
        }


Route = tuple[str, str, Callable[..., Answer]]
# The Admin API, one row per endpoint below /admin/realms/{realm}: (method, path pattern, handler).
# The writes (POST/PUT/DELETE of users, groups and role mappings) get rows here too.
ADMIN_ROUTES: list[Route] = [
    ("GET", r"", FakeKeycloak._realm),
    ("GET", r"users", FakeKeycloak._users),
    ("GET", r"users/count", FakeKeycloak._users_count),
    ("GET", r"users/([^/]+)", FakeKeycloak._user),
    ("GET", r"groups", FakeKeycloak._groups),
    ("GET", r"groups/([^/]+)/members", FakeKeycloak._group_members),
    ("GET", r"roles", FakeKeycloak._roles),
    ("GET", r"clients", FakeKeycloak._clients),
]


def _unauthorized(client: FakeClient, reason: str) -> Refused:
    if client.uses_keys:  # Keycloak 26.7 says invalid_client here, unauthorized_client below
        return _invalid(f"Client authentication with signed JWT failed: {reason}")
    # Keycloak 26.7's words, two spaces included.
    reason = reason.replace("on JWT token failed", "on JWT token by client secret  failed")
    description = f"Client authentication with client secret signed JWT failed: {reason}"
    return Refused(400, "unauthorized_client", description)


def _algorithms_of(client: FakeClient) -> tuple[str, ...]:
    return KEY_ALGORITHMS if client.uses_keys else HMAC_ALGORITHMS


def _user_representation(user: Mapping[str, Any], *, brief: bool) -> dict[str, Any]:
    if brief:
        return {key: user[key] for key in BRIEF_USER_KEYS if key in user}
    return {"totp": False, "requiredActions": [], "notBefore": 0, **user}


def _public_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


# --- HTTP ----------------------------------------------------------------------------------------


def _handler(fake: FakeKeycloak) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeKeycloak"

        def _serve(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if fake._fault is not None and fake._fault[0] == "down":
                self.close_connection = True  # a kept-alive connection: dropped, unanswered
                return
            url = urlsplit(self.path)
            fake.received.append((self.command, url.path))
            answer = fake._faulty_answer() or self._route(url.path, url.query, body)
            self._send(answer)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def _route(self, path: str, query: str, body: bytes) -> Answer:
            params = {k: v[0] for k, v in parse_qs(query).items()}
            realm_prefix = f"/realms/{fake.realm}"
            admin_prefix = f"/admin/realms/{fake.realm}"
            if path == urlsplit(fake.token_endpoint).path and self.command == "POST":
                form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
                return fake.token(form)
            if path == f"{realm_prefix}/.well-known/openid-configuration":
                return Answer(200, fake.discovery())
            if path == admin_prefix or path.startswith(f"{admin_prefix}/"):
                bearer = self.headers.get("Authorization", "").removeprefix("Bearer ")
                return fake.admin(self.command, path[len(admin_prefix) :], params, bearer)
            if path.startswith(("/realms/", "/admin/realms/")) and not path.startswith(
                (f"{realm_prefix}/", f"{admin_prefix}/")
            ):
                return Answer(404, {"error": "Realm does not exist"})
            return Answer(404, {"error": "HTTP 404 Not Found"})

        def _send(self, answer: Answer) -> None:
            body = (
                answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
            )
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return super().date_time_string(fake.clock() if timestamp is None else timestamp)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
