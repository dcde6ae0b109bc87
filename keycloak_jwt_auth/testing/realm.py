"""The fake's in-memory realm: its URLs, clients (and their roles), users, groups, realm roles,
role mappings, organizations, sessions and passwords, kept consistent (a deleted user leaves its
groups...). No HTTP here: the Admin API
(``admin_api``) answers requests over it, the token endpoint reads its clients, and
``FakeKeycloak`` is a realm that a test arranges and inspects, served over HTTP."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from keycloak_jwt_auth.testing.federated import FakeIdentityProvider

# The realm-management roles the default client's service account has: the Admin API's reads.
READ_ROLES = ("view-users", "query-users", "view-realm", "query-groups", "view-clients")
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
    dpop_bound: bool = False  # "Require DPoP bound tokens": no token without a proof
    # federated_jwt: the alias of the identity provider whose JWTs with this sub authenticate it.
    federated_issuer: str | None = None
    federated_subject: str | None = None
    # Standard token exchange switched on ("standard.token.exchange.enabled"), and the
    # audiences available to it (an audience mapper or a client role of each, in Keycloak).
    standard_token_exchange: bool = False
    exchange_audiences: tuple[str, ...] = ()
    id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    user_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def uses_keys(self) -> bool:
        return self.secret is None and self.federated_issuer is None

    def representation(self) -> dict[str, Any]:
        """As the Admin API shows it (``GET /clients``)."""
        attributes = {"token.endpoint.auth.signing.alg": self.algorithm or ""}
        if self.jwks_url:
            attributes |= {"use.jwks.url": "true", "jwks.url": self.jwks_url}
        if self.dpop_bound:
            attributes["dpop.bound.access.tokens"] = "true"
        authenticator = "client-jwt" if self.uses_keys else "client-secret-jwt"
        if self.federated_issuer is not None:
            authenticator = "federated-jwt"
            attributes["jwt.credential.issuer"] = self.federated_issuer
            attributes["jwt.credential.sub"] = self.federated_subject or ""
        if self.standard_token_exchange:
            attributes["standard.token.exchange.enabled"] = "true"
        return {
            "id": self.id,
            "clientId": self.client_id,
            "enabled": True,
            "publicClient": False,
            "serviceAccountsEnabled": self.service_accounts,
            "clientAuthenticatorType": authenticator,
            "attributes": attributes,
            **({} if self.secret is None else {"secret": self.secret}),  # as Keycloak shows it
        }


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


class Realm:
    """One realm as Keycloak serves it: its URLs (once its server listens, see ``serve_at``) and
    its data, as plain dicts shaped like Keycloak's representations."""

    def __init__(
        self,
        realm: str,
        clients: Iterable[FakeClient],
        *,
        token_lifespan: int,
        password_min_length: int | None,
    ) -> None:
        self.realm = realm  # its name (the "realm" of Keycloak's RealmRepresentation)
        self.token_lifespan = token_lifespan
        self.password_min_length = password_min_length  # the password policy "length"
        self.serve_at("http://127.0.0.1:0")  # port 0: not listening yet
        self.clients: dict[str, FakeClient] = {}
        for client in clients:
            self.add_client(client)
        self.users: list[dict[str, Any]] = []
        self.groups: list[dict[str, Any]] = []  # each with the ids of its "members"
        self.realm_roles: list[dict[str, Any]] = [
            new_role(name) for name in ("offline_access", "uma_authorization")
        ] + [new_role(f"default-roles-{realm}")]
        self.role_mappings: dict[str, list[str]] = {}  # user id -> realm role names
        self.passwords: dict[str, StoredPassword] = {}  # user id -> its password's hash
        self.client_roles: dict[str, list[dict[str, Any]]] = {}  # client's internal id -> roles
        self.client_role_mappings: dict[tuple[str, str], list[str]] = {}  # (user, client) -> names
        self.organizations: list[dict[str, Any]] = []  # each with the ids of its "members"
        self.sessions: dict[str, list[dict[str, Any]]] = {}  # user id -> its sessions
        self.smtp: dict[str, str] | None = None  # the realm's "Email" settings: None, none
        self.sent_emails: list[dict[str, Any]] = []  # what execute-actions-email sent
        self.identity_providers: dict[str, FakeIdentityProvider] = {}  # by alias

    def serve_at(self, url: str) -> None:
        """Keycloak's URLs for this realm on the server at ``url``."""
        self.url = url
        self.issuer = f"{url}/realms/{self.realm}"
        self.admin_url = f"{url}/admin/realms/{self.realm}"
        self.token_endpoint = f"{self.issuer}/protocol/openid-connect/token"

    # --- what a test arranges --------------------------------------------------------------

    def add_client(self, client: FakeClient | str, **fields: Any) -> FakeClient:
        """Register a client (a ``FakeClient``, or a client id and its fields). A client with
        ``private_key`` and no public keys gets the private key's public half."""
        if isinstance(client, str):
            client = FakeClient(client, **fields)
        if client.private_key and not client.public_keys and not client.jwks_url:
            client.public_keys = [_public_pem(client.private_key)]
        self.clients[client.client_id] = client
        return client

    def add_identity_provider(self, alias: str, issuer: str, **fields: Any) -> FakeIdentityProvider:
        """Trust ``issuer``'s JWTs for federated clients (``kind`` "kubernetes" or "oidc")."""
        provider = FakeIdentityProvider(alias, issuer, **fields)
        self.identity_providers[alias] = provider
        return provider

    def add_federated_client(
        self, client_id: str, provider: str, subject: str, **fields: Any
    ) -> FakeClient:
        """A ``federated_jwt`` client: JWTs of identity provider ``provider`` (its alias) with
        ``sub`` = ``subject`` authenticate it."""
        fields = {"algorithm": None, **fields}
        return self.add_client(
            client_id, federated_issuer=provider, federated_subject=subject, **fields
        )

    def allow_token_exchange(self, client_id: str | None = None, *audiences: str) -> None:
        """Switch on standard token exchange for ``client_id`` (default: the first client)
        and make ``audiences`` available to it; an audience the realm lacks is added as a
        client with no credential (an API that only receives tokens)."""
        client = self.client(client_id)
        client.standard_token_exchange = True
        client.exchange_audiences = (*client.exchange_audiences, *audiences)
        for audience in audiences:
            if audience not in self.clients:
                self.add_client(audience, algorithm=None, roles=(), service_accounts=False)

    def client(self, client_id: str | None = None) -> FakeClient:
        return self.clients[client_id] if client_id else next(iter(self.clients.values()))

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
        return self.group_representation(self.groups[-1])

    def add_role(self, name: str) -> dict[str, Any]:
        """A realm role (``assign_realm_roles`` grants roles by name)."""
        self.realm_roles.append(new_role(name))
        return self.realm_roles[-1]

    def add_client_role(self, client_id: str, name: str) -> dict[str, Any]:
        """A role of the client ``client_id`` (its public clientId)."""
        container = self.client(client_id).id
        role = {**new_role(name), "clientRole": True, "containerId": container}
        self.client_roles.setdefault(container, []).append(role)
        return role

    def add_organization(
        self, name: str, *, alias: str | None = None, members: Iterable[Mapping[str, Any]] = ()
    ) -> dict[str, Any]:
        """An organization (the alias defaults to the name, as Keycloak's does)."""
        organization = {"id": str(uuid.uuid4()), "name": name, "alias": alias or name,
                        "enabled": True, "members": [user["id"] for user in members]}  # fmt: skip
        self.organizations.append(organization)
        return organization

    def start_session(self, user: Mapping[str, Any], client_id: str) -> dict[str, Any]:
        """A session of the user, as a login through ``client_id`` makes one."""
        now = int(time.time()) * 1000
        client = self.client(client_id)
        session = {"id": secrets.token_urlsafe(18), "username": user["username"],
                   "userId": user["id"], "ipAddress": "127.0.0.1", "start": now,
                   "lastAccess": now, "rememberMe": False,
                   "clients": {client.id: client.client_id}, "transientUser": False}  # fmt: skip
        self.sessions.setdefault(user["id"], []).append(session)
        return session

    def check_password(self, user_id: str, password: str) -> bool:
        """Whether ``password`` is the one last set for the user through the Admin API."""
        stored = self.passwords.get(user_id)
        return stored is not None and stored.matches(password)

    # --- what the Admin API reads and changes ----------------------------------------------

    def user(self, user_id: str) -> dict[str, Any] | None:
        return next((user for user in self.users if user["id"] == user_id), None)

    def group(self, group_id: str) -> dict[str, Any] | None:
        return next((group for group in self.groups if group["id"] == group_id), None)

    def group_representation(self, group: Mapping[str, Any]) -> dict[str, Any]:
        children = sum(1 for g in self.groups if g.get("parentId") == group["id"])
        shown = {k: v for k, v in group.items() if k != "members"}
        return {**shown, "subGroupCount": children, "subGroups": []}

    def set_password(self, user: dict[str, Any], password: str, *, temporary: bool) -> None:
        """Keep its hash; a temporary one sets UPDATE_PASSWORD, a lasting one clears it."""
        self.passwords[user["id"]] = StoredPassword.of(password, temporary=temporary)
        actions = [a for a in user.get("requiredActions", []) if a != UPDATE_PASSWORD]
        user["requiredActions"] = [*actions, UPDATE_PASSWORD] if temporary else actions

    def remove_user(self, user: dict[str, Any]) -> None:
        """The user, its group memberships, role mappings and password."""
        self.users.remove(user)
        for group in self.groups:
            group["members"] = [member for member in group["members"] if member != user["id"]]
        self.role_mappings.pop(user["id"], None)
        self.passwords.pop(user["id"], None)
        self.sessions.pop(user["id"], None)
        for organization in self.organizations:
            organization["members"] = [m for m in organization["members"] if m != user["id"]]
        for key in [key for key in self.client_role_mappings if key[0] == user["id"]]:
            del self.client_role_mappings[key]

    def remove_group(self, group: Mapping[str, Any]) -> None:
        """The group and its subgroups, at every depth."""
        doomed = {group["id"]}
        for other in self.groups:  # a parent always comes before its subgroups
            if other.get("parentId") in doomed:
                doomed.add(other["id"])
        self.groups[:] = [g for g in self.groups if g["id"] not in doomed]


BRIEF_USER_KEYS = (
    *("id", "username", "firstName", "lastName", "email"),
    *("emailVerified", "enabled", "createdTimestamp"),
)


def user_representation(user: Mapping[str, Any], *, brief: bool) -> dict[str, Any]:
    if brief:
        return {key: user[key] for key in BRIEF_USER_KEYS if key in user}
    return {"totp": False, "requiredActions": [], "notBefore": 0, **user}


def new_role(name: str) -> dict[str, Any]:
    """A realm role's representation."""
    return {"id": str(uuid.uuid4()), "name": name, "composite": False, "clientRole": False}


def _public_pem(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    public = key.public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
