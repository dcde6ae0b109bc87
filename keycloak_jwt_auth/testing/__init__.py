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

It also serves the realm's discovery document and a small Admin API (the reads and writes of
``KeycloakAdmin``) over an in-memory realm, answering 400/401/403/404/409 with Keycloak 26.7's
bodies (writes need ``manage-users``; a password is kept only as a salted hash), and it can fail
on purpose (``fail("down" | "slow" | "5xx" | "html")``).

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
import hashlib
import hmac
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

from keycloak_jwt_auth.admin import MANAGE_USERS, ROLES_BY_RESOURCE
from keycloak_jwt_auth.client_auth.assertion import ASSERTION_TYPE

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
WRITABLE_USER_KEYS = (
    *("username", "email", "firstName", "lastName"),
    *("enabled", "emailVerified", "attributes", "requiredActions"),
)
READ_ROLE_BY_RESOURCE = {**ROLES_BY_RESOURCE, "group-by-path": "view-users"}
# Keycloak lets a role do what these lesser ones do (manage-users reads users and groups...).
IMPLIED_ROLES = {"manage-users": ("view-users", "query-groups"), "view-users": ("query-groups",)}
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")  # looser than Keycloak's validator, enough for tests
UPDATE_PASSWORD = "UPDATE_PASSWORD"  # the required action a temporary password sets
PASSWORD_HASH_ROUNDS = 1_000  # a test double: a slow hash would only slow the tests


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
    body: Any  # JSON-able, bytes sent as they are, or None: no body
    content_type: str = "application/json"
    location: str | None = None  # the Location header of a 201


NO_CONTENT = Answer(204, None)


@dataclasses.dataclass(frozen=True)
class AdminRequest:
    """What an Admin API handler reads: the query string and the JSON body (None: none)."""

    query: Mapping[str, str]
    body: Any = None


class Answered(Exception):
    """Raised below an Admin API handler: send ``answer`` instead (a 400, 404, 409...)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


@dataclasses.dataclass(frozen=True)
class StoredPassword:
    """A password set through the Admin API: a salted hash, never the password itself."""

    salt: bytes = dataclasses.field(repr=False)
    digest: bytes = dataclasses.field(repr=False)
    temporary: bool = False

    @classmethod
    def of(cls, password: str, *, temporary: bool) -> StoredPassword:
        salt = secrets.token_bytes(16)
        return cls(salt, _password_digest(password, salt), temporary)

    def matches(self, password: str) -> bool:
        return hmac.compare_digest(self.digest, _password_digest(password, self.salt))


def _password_digest(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode(), salt, PASSWORD_HASH_ROUNDS)


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
    read roles). ``password_min_length``: the realm's password policy "length" (None: none)."""

    def __init__(
        self,
        *,
        realm: str = "demo",
        clients: list[FakeClient] | None = None,
        token_lifespan: int = 300,
        password_min_length: int | None = None,
    ) -> None:
        self.realm = realm
        self.token_lifespan = token_lifespan
        self.password_min_length = password_min_length
        self.clients: dict[str, FakeClient] = {}
        for client in clients or [FakeClient("django-service", secret=secrets.token_urlsafe(32))]:
            self.add_client(client)
        self.users: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []
        self.realm_roles: list[dict[str, Any]] = [
            self._role(name) for name in ("offline_access", "uma_authorization")
        ] + [self._role(f"default-roles-{realm}")]
        self.role_mappings: dict[str, list[str]] = {}  # user id -> realm role names
        self.passwords: dict[str, StoredPassword] = {}  # user id -> its password's hash
        self.received: list[tuple[str, str]] = []  # (method, path) of every request
        self.clock: Callable[[], float] = time.time  # Keycloak's clock, for skew tests
        self.slow_seconds = 3.0
        self._fault: tuple[str, int | None] | None = None
        self._key = secrets.token_bytes(32)  # signs the access tokens (HS256)
        self._used_jtis: dict[str, float] = {}
        self._lock = threading.Lock()
        self._realm_lock = threading.Lock()  # one Admin API handler at a time
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
    def admin_url(self) -> str:
        return f"{self.url}/admin/realms/{self.realm}"

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
        self.role_mappings[user["id"]] = [f"default-roles-{self.realm}"]  # as Keycloak grants
        return user

    def add_group(
        self,
        name: str,
        *,
        members: Iterable[Mapping[str, Any]] = (),
        parent: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A top-level group, or a subgroup of ``parent``; its representation."""
        group: dict[str, Any] = {"id": str(uuid.uuid4()), "name": name}
        if parent is None:
            group["path"] = f"/{name}"
        else:
            group |= {"path": f"{parent['path']}/{name}", "parentId": parent["id"]}
        self.groups.append({**group, "members": [user["id"] for user in members]})
        return self._group_representation(self.groups[-1])

    def add_role(self, name: str) -> dict[str, Any]:
        """A realm role (``assign_realm_roles`` grants roles by name)."""
        self.realm_roles.append(self._role(name))
        return self.realm_roles[-1]

    def check_password(self, user_id: str, password: str) -> bool:
        """Whether ``password`` is the one last set for the user through the Admin API."""
        stored = self.passwords.get(user_id)
        return stored is not None and stored.matches(password)

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

    def admin(
        self, method: str, path: str, query: Mapping[str, str], bearer: str, body: bytes = b""
    ) -> Answer:
        try:
            claims = self.verify_token(bearer)
        except jwt.PyJWTError:
            return Answer(401, {"error": "HTTP 401 Unauthorized"})
        segments = [unquote(s) for s in path.strip("/").split("/") if s]
        roles = claims.get("resource_access", {}).get("realm-management", {}).get("roles", [])
        for route_method, pattern, handler in ADMIN_ROUTES:
            match = re.fullmatch(pattern, "/".join(segments))
            if route_method == method and match:
                if _required_role(method, segments) not in _granted(roles):
                    return Answer(403, {"error": "HTTP 403 Forbidden"})
                return self._handle(handler, query, body, match.groups())
        return Answer(404, {"error": "HTTP 404 Not Found"})

    def _handle(
        self, handler: Handler, query: Mapping[str, str], body: bytes, ids: tuple[str, ...]
    ) -> Answer:
        try:
            request = AdminRequest(query, _json_of(body))
            with self._realm_lock:
                return handler(self, request, *ids)
        except Answered as answered:
            return answered.answer

    def _realm(self, request: AdminRequest) -> Answer:
        lifespan = self.token_lifespan
        return Answer(200, {"realm": self.realm, "enabled": True, "accessTokenLifespan": lifespan})

    def _users(self, request: AdminRequest) -> Answer:
        query = request.query
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        brief = query.get("briefRepresentation") == "true"
        found = self._matching_users(query)[first : first + size]
        return Answer(200, [_user_representation(u, brief=brief) for u in found])

    def _users_count(self, request: AdminRequest) -> Answer:
        return Answer(200, len(self._matching_users(request.query)))

    def _user(self, request: AdminRequest, user_id: str) -> Answer:
        return Answer(200, _user_representation(self._user_by_id(user_id), brief=False))

    def _user_by_id(self, user_id: str) -> dict[str, Any]:
        for user in self.users:
            if user["id"] == user_id:
                return user
        raise Answered(Answer(404, {"error": "User not found"}))

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

    def _groups(self, request: AdminRequest) -> Answer:
        """Top-level groups (the search, unlike Keycloak's, looks at their names only)."""
        query = request.query
        first, size = int(query.get("first", 0)), int(query.get("max", 100))
        search = query.get("search", "").lower()
        top = [g for g in self.groups if "parentId" not in g and search in g["name"].lower()]
        return Answer(200, [self._group_representation(g) for g in top[first : first + size]])

    def _group_members(self, request: AdminRequest, group_id: str) -> Answer:
        group = self._group_by_id(group_id)
        first, size = int(request.query.get("first", 0)), int(request.query.get("max", 100))
        members = [u for u in self.users if u["id"] in group["members"]][first : first + size]
        return Answer(200, [_user_representation(u, brief=True) for u in members])

    def _group_by_id(
        self, group_id: str, missing: str = "Could not find group by id"
    ) -> dict[str, Any]:
        for group in self.groups:
            if group["id"] == group_id:
                return group
        raise Answered(Answer(404, {"error": missing}))

    def _group_representation(self, group: Mapping[str, Any]) -> dict[str, Any]:
        children = sum(1 for g in self.groups if g.get("parentId") == group["id"])
        shown = {k: v for k, v in group.items() if k != "members"}
        return {**shown, "subGroupCount": children, "subGroups": []}

    def _roles(self, request: AdminRequest) -> Answer:
        search = request.query.get("search", "").lower()
        return Answer(200, [r for r in self.realm_roles if search in r["name"].lower()])

    def _clients(self, request: AdminRequest) -> Answer:
        wanted = request.query.get("clientId")
        found = [c for c in self.clients.values() if wanted in (None, c.client_id)]
        return Answer(200, [c.representation() for c in found])

    # --- the Admin API's writes: Keycloak 26.7's checks in its order, its words -------------

    def _create_user(self, request: AdminRequest) -> Answer:
        fields = _user_fields(request.body)
        username = str(fields.pop("username", None) or "").strip()
        if not username:
            raise Answered(_message(400, "User name is missing"))
        self._refuse_duplicates({**fields, "username": username})
        _refuse_invalid_profile(fields)
        passwords = self._passwords_to_set(request.body, creating=True)
        user = self.add_user(username, **{"enabled": False, **fields})  # disabled unless told
        self._store_passwords(user, passwords)
        return Answer(201, None, location=f"{self.admin_url}/users/{user['id']}")

    def _update_user(self, request: AdminRequest, user_id: str) -> Answer:
        """Merges the fields given (a partial PUT keeps the others)."""
        user = self._user_by_id(user_id)
        fields = _user_fields(request.body)
        if "username" in fields and not str(fields["username"] or "").strip():
            raise Answered(_message(400, "User name is missing"))
        self._refuse_duplicates(fields, user_id=user_id)
        _refuse_invalid_profile(fields)
        passwords = self._passwords_to_set(request.body, creating=False)
        user.update(fields)
        self._store_passwords(user, passwords)
        return NO_CONTENT

    def _delete_user(self, request: AdminRequest, user_id: str) -> Answer:
        self.users.remove(self._user_by_id(user_id))
        for group in self.groups:
            group["members"] = [member for member in group["members"] if member != user_id]
        self.role_mappings.pop(user_id, None)
        self.passwords.pop(user_id, None)
        return NO_CONTENT

    def _reset_password(self, request: AdminRequest, user_id: str) -> Answer:
        user = self._user_by_id(user_id)
        credential = request.body if isinstance(request.body, dict) else {}
        password = credential.get("value")
        if not isinstance(password, str):
            raise Answered(Answer(400, {"error": "No password provided"}))
        if not password.strip():
            raise Answered(Answer(400, {"error": "Empty password not allowed"}))
        self._refuse_weak_password(password, creating=False)
        self._store_passwords(user, [(password, credential.get("temporary") is True)])
        return NO_CONTENT

    def _refuse_duplicates(self, fields: Mapping[str, Any], *, user_id: str | None = None) -> None:
        others = [user for user in self.users if user["id"] != user_id]
        for key in ("username", "email"):
            value = str(fields.get(key) or "").lower()
            if value and any(str(user.get(key, "")).lower() == value for user in others):
                raise Answered(_message(409, f"User exists with same {key}"))

    def _passwords_to_set(self, body: Any, *, creating: bool) -> list[tuple[str, bool]]:
        """The password credentials of a user representation, once all meet the policy."""
        passwords = _passwords_in(body)
        for password, _ in passwords:
            self._refuse_weak_password(password, creating=creating)
        return passwords

    def _refuse_weak_password(self, password: str, *, creating: bool) -> None:
        """The realm's policy, refused in Keycloak's words (which never echo the password); a
        create with credentials says only "Password policy not met"."""
        minimum = self.password_min_length
        if minimum is None or len(password) >= minimum:
            return
        if creating:
            raise Answered(_message(400, "Password policy not met"))
        description = f"Invalid password: minimum length {minimum}."
        raise Answered(_error(400, "invalidPasswordMinLengthMessage", description))

    def _store_passwords(self, user: dict[str, Any], passwords: list[tuple[str, bool]]) -> None:
        """Each (password, temporary) in turn: a temporary one sets UPDATE_PASSWORD."""
        for password, temporary in passwords:
            self.passwords[user["id"]] = StoredPassword.of(password, temporary=temporary)
            actions = [a for a in user.get("requiredActions", []) if a != UPDATE_PASSWORD]
            user["requiredActions"] = [*actions, UPDATE_PASSWORD] if temporary else actions

    def _user_groups(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        joined = [g for g in self.groups if user_id in g["members"]]
        return Answer(200, [self._group_representation(g) for g in joined])

    def _join_group(self, request: AdminRequest, user_id: str, group_id: str) -> Answer:
        self._user_by_id(user_id)
        group = self._group_by_id(group_id, missing="Group not found")
        if user_id not in group["members"]:
            group["members"].append(user_id)
        return NO_CONTENT

    def _leave_group(self, request: AdminRequest, user_id: str, group_id: str) -> Answer:
        self._user_by_id(user_id)
        group = self._group_by_id(group_id, missing="Group not found")
        group["members"] = [member for member in group["members"] if member != user_id]
        return NO_CONTENT

    def _user_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        names = self.role_mappings.get(user_id, [])
        return Answer(200, [r for r in self.realm_roles if r["name"] in names])

    def _add_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        names = self.role_mappings.setdefault(user_id, [])
        names += [n for n in self._roles_named(request.body) if n not in names]
        return NO_CONTENT

    def _remove_role_mappings(self, request: AdminRequest, user_id: str) -> Answer:
        self._user_by_id(user_id)
        removed = self._roles_named(request.body)
        kept = [n for n in self.role_mappings.get(user_id, []) if n not in removed]
        self.role_mappings[user_id] = kept
        return NO_CONTENT

    def _roles_named(self, representations: Any) -> list[str]:
        """The names of the realm roles a body lists; each must match a role's name and id."""
        known = {(r["name"], r["id"]) for r in self.realm_roles}
        listed = representations if isinstance(representations, list) else []
        for role in listed:
            if not isinstance(role, dict) or (role.get("name"), role.get("id")) not in known:
                raise Answered(Answer(404, {"error": "Role not found"}))
        return [role["name"] for role in listed]

    def _create_group(self, request: AdminRequest) -> Answer:
        name = self._new_group_name(request.body, parent=None)
        group = self.add_group(name)
        return Answer(201, None, location=f"{self.admin_url}/groups/{group['id']}")

    def _create_subgroup(self, request: AdminRequest, parent_id: str) -> Answer:
        parent = self._group_by_id(parent_id)
        group = self.add_group(self._new_group_name(request.body, parent=parent), parent=parent)
        return Answer(201, group, location=f"{self.admin_url}/groups/{group['id']}")

    def _new_group_name(self, body: Any, *, parent: Mapping[str, Any] | None) -> str:
        name = body.get("name") if isinstance(body, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise Answered(_message(400, "Group name is missing"))
        siblings = [g for g in self.groups if g.get("parentId") == (parent or {}).get("id")]
        if any(g["name"] == name for g in siblings):
            kind = "Top level group" if parent is None else "Sibling group"
            raise Answered(_message(409, f"{kind} named '{name}' already exists."))
        return name

    def _delete_group(self, request: AdminRequest, group_id: str) -> Answer:
        doomed = {self._group_by_id(group_id)["id"]}
        for group in self.groups:  # a parent always comes before its subgroups
            if group.get("parentId") in doomed:
                doomed.add(group["id"])
        self.groups[:] = [g for g in self.groups if g["id"] not in doomed]
        return NO_CONTENT

    def _group_by_path(self, request: AdminRequest, path: str) -> Answer:
        for group in self.groups:
            if group["path"] == f"/{path}":
                return Answer(200, self._group_representation(group))
        raise Answered(Answer(404, {"error": "Group path does not exist"}))

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


Handler = Callable[..., Answer]  # (fake, request, *ids from the path) -> answer
Route = tuple[str, str, Handler]
# The Admin API, one row per endpoint below /admin/realms/{realm}: (method, path pattern, handler).
# A GET needs the role ROLES_BY_RESOURCE names for its first segment; any other method,
# manage-users.
ADMIN_ROUTES: list[Route] = [
    ("GET", r"", FakeKeycloak._realm),
    ("GET", r"users", FakeKeycloak._users),
    ("POST", r"users", FakeKeycloak._create_user),
    ("GET", r"users/count", FakeKeycloak._users_count),
    ("GET", r"users/([^/]+)", FakeKeycloak._user),
    ("PUT", r"users/([^/]+)", FakeKeycloak._update_user),
    ("DELETE", r"users/([^/]+)", FakeKeycloak._delete_user),
    ("PUT", r"users/([^/]+)/reset-password", FakeKeycloak._reset_password),
    ("GET", r"users/([^/]+)/groups", FakeKeycloak._user_groups),
    ("PUT", r"users/([^/]+)/groups/([^/]+)", FakeKeycloak._join_group),
    ("DELETE", r"users/([^/]+)/groups/([^/]+)", FakeKeycloak._leave_group),
    ("GET", r"users/([^/]+)/role-mappings/realm", FakeKeycloak._user_role_mappings),
    ("POST", r"users/([^/]+)/role-mappings/realm", FakeKeycloak._add_role_mappings),
    ("DELETE", r"users/([^/]+)/role-mappings/realm", FakeKeycloak._remove_role_mappings),
    ("GET", r"groups", FakeKeycloak._groups),
    ("POST", r"groups", FakeKeycloak._create_group),
    ("POST", r"groups/([^/]+)/children", FakeKeycloak._create_subgroup),
    ("DELETE", r"groups/([^/]+)", FakeKeycloak._delete_group),
    ("GET", r"groups/([^/]+)/members", FakeKeycloak._group_members),
    ("GET", r"group-by-path/(.+)", FakeKeycloak._group_by_path),
    ("GET", r"roles", FakeKeycloak._roles),
    ("GET", r"clients", FakeKeycloak._clients),
]


def _required_role(method: str, segments: list[str]) -> str:
    if method != "GET":
        return MANAGE_USERS
    return READ_ROLE_BY_RESOURCE.get(segments[0] if segments else "", "view-realm")


def _granted(roles: Iterable[str]) -> set[str]:
    roles = set(roles)
    return roles.union(*(IMPLIED_ROLES.get(role, ()) for role in roles))


def _json_of(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        raise Answered(_error(400, "invalid_request", "Cannot parse the JSON")) from None


def _message(status: int, words: str) -> Answer:
    """The Admin API's own error shape: ``{"errorMessage": ...}``."""
    return Answer(status, {"errorMessage": words})


def _user_fields(body: Any) -> dict[str, Any]:
    """The representation's fields the fake keeps; Keycloak keeps usernames and emails
    lowercase."""
    if not isinstance(body, dict):
        raise Answered(_error(400, "invalid_request", "Cannot parse the JSON"))
    fields = {key: body[key] for key in WRITABLE_USER_KEYS if key in body}
    for key in ("username", "email"):
        if isinstance(fields.get(key), str):
            fields[key] = fields[key].lower()
    return fields


def _refuse_invalid_profile(fields: Mapping[str, Any]) -> None:
    """The user profile's validators (only the email's here), in Keycloak's field-error shape."""
    email = fields.get("email")
    if email and not (isinstance(email, str) and EMAIL.fullmatch(email)):
        error = {
            "field": "email",
            "errorMessage": "error-invalid-email",
            "params": ["email", email],
        }
        raise Answered(Answer(400, error))


def _passwords_in(body: Mapping[str, Any]) -> list[tuple[str, bool]]:
    """(password, temporary) of each password credential of a user representation."""
    credentials = body.get("credentials")
    return [
        (credential["value"], credential.get("temporary") is True)
        for credential in (credentials if isinstance(credentials, list) else [])
        if isinstance(credential, dict)
        and credential.get("type") == "password"
        and isinstance(credential.get("value"), str)
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


def _encoded(body: Any) -> bytes:
    if body is None:
        return b""
    return body if isinstance(body, bytes) else json.dumps(body).encode()


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
                return fake.admin(self.command, path[len(admin_prefix) :], params, bearer, body)
            if path.startswith(("/realms/", "/admin/realms/")) and not path.startswith(
                (f"{realm_prefix}/", f"{admin_prefix}/")
            ):
                return Answer(404, {"error": "Realm does not exist"})
            return Answer(404, {"error": "HTTP 404 Not Found"})

        def _send(self, answer: Answer) -> None:
            body = _encoded(answer.body)
            self.send_response(answer.status)
            if answer.body is not None:
                self.send_header("Content-Type", answer.content_type)
            if answer.location is not None:
                self.send_header("Location", answer.location)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def date_time_string(self, timestamp: float | None = None) -> str:
            return super().date_time_string(fake.clock() if timestamp is None else timestamp)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
