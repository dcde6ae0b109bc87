"""FakeKeycloak and the real Keycloak 26 answer the same assertions the same way: the same set of
good and bad assertions, sent to both, gets the same status, ``error`` and description."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests

from keycloak_jwt_auth.admin import KeycloakAdmin
from keycloak_jwt_auth.client_auth import ASSERTION_TYPE
from keycloak_jwt_auth.exceptions import AdminAPIError
from keycloak_jwt_auth.keys import load_private_key, public_jwk
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak
from support.realm import realm_secrets
from tests.keyring import pem

from .conftest import JwksServer, client_settings, with_key_clients

pytestmark = pytest.mark.keycloak

CLIENT = "django-service"  # HS256, the "Signature algorithm" attribute set


@dataclass(frozen=True)
class Target:
    issuer: str
    secret: str

    @property
    def token_endpoint(self) -> str:
        return f"{self.issuer}/protocol/openid-connect/token"


Recipe = Callable[[Target], dict[str, Any]]  # the claims (and "_key", "_alg", "_client_id")


def claims(target: Target, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": CLIENT, "sub": CLIENT, "aud": target.issuer, "iat": now, "exp": now + 60,
            "jti": secrets.token_urlsafe(16)}  # fmt: skip
    return {k: v for k, v in {**base, **changes}.items() if v is not None}


CASES: dict[str, Recipe] = {
    "good": lambda t: claims(t),
    "aud = token endpoint": lambda t: claims(t, aud=t.token_endpoint),
    "wrong secret": lambda t: {**claims(t), "_key": "a-wrong-secret-long-enough-for-hs256!!"},
    "wrong aud": lambda t: claims(t, aud="https://elsewhere.example/realms/demo"),
    "two auds": lambda t: claims(t, aud=[t.issuer, t.token_endpoint]),
    "expired": lambda t: claims(t, iat=int(time.time()) - 120, exp=int(time.time()) - 60),
    "iat 90 s old": lambda t: claims(t, iat=int(time.time()) - 90),
    "iat 30 s ahead": lambda t: claims(t, iat=int(time.time()) + 30),
    "no exp": lambda t: claims(t, exp=None),
    "no jti": lambda t: claims(t, jti=None),
    "alg not allowed (HS512)": lambda t: {**claims(t), "_alg": "HS512"},
    "sub != client_id": lambda t: claims(t, sub="django-no-roles"),
    "unknown client": lambda t: claims(t, iss="nobody", sub="nobody"),
    "form client_id differs": lambda t: {**claims(t), "_client_id": "django-no-roles"},
}


def send(target: Target, recipe: Recipe, *, twice: bool = False) -> tuple[int, str, str]:
    """(status, error, error_description) of posting the recipe's assertion (the second answer
    when ``twice``: a replay)."""
    spec = recipe(target)
    key, alg = spec.pop("_key", target.secret), spec.pop("_alg", "HS256")
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": jwt.encode(spec, key * (2 if alg == "HS512" else 1), alg),
        "client_id": spec.pop("_client_id", spec.get("sub", CLIENT)),
    }
    for _ in range(2 if twice else 1):
        answer = requests.post(target.token_endpoint, data=form, timeout=10)
    body = answer.json()
    return answer.status_code, body.get("error", "-"), body.get("error_description", "-")


def test_fake_and_real_keycloak_agree(
    keycloak_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = realm_secrets()[CLIENT]
    with FakeKeycloak(clients=[FakeClient(CLIENT, secret=secret, algorithm="HS256")]) as fake:
        real_target, fake_target = (
            Target(f"{keycloak_server}/realms/demo", secret),
            Target(fake.issuer, secret),
        )
        rows = [
            (name, send(real_target, recipe), send(fake_target, recipe))
            for name, recipe in CASES.items()
        ]
        good = CASES["good"]
        rows.append(("reused jti", send(real_target, good, twice=True),
                     send(fake_target, good, twice=True)))  # fmt: skip
    with capsys.disabled():
        print("\n| assertion | Keycloak 26 | FakeKeycloak | same |\n|---|---|---|---|")
        for name, real, faked in rows:
            print(
                f"| {name} | {_cell(real)} | {_cell(faked)} | {'yes' if real == faked else 'NO'} |"
            )
    assert [(name, real) for name, real, _ in rows] == [(name, faked) for name, _, faked in rows]
    assert sum(real[0] == 200 for _, real, _ in rows) == 2  # good, aud = token endpoint


def _cell(answer: tuple[int, str, str]) -> str:
    status, error, description = answer
    return "accepted (200)" if status == 200 else f"{status} {error}: {description}"


# --- private_key_jwt: keys read from this app's JWKS view ------------------------------------

KEY_CLIENT = "django-keys-rsa"  # no "Signature algorithm" attribute: any asymmetric one


def key_assertion(
    target: Target, key: str, alg: str = "RS256", kid: str | None = None, **changes: Any
) -> str:
    now = int(time.time())
    body = {"iss": KEY_CLIENT, "sub": KEY_CLIENT, "aud": target.issuer, "iat": now,
            "exp": now + 60, "jti": secrets.token_urlsafe(16), **changes}  # fmt: skip
    signing_key: Any = key if alg.startswith("HS") else load_private_key(key)
    return jwt.encode(body, signing_key, alg, headers={"kid": kid} if kid else None)


def kid(key: str) -> str:
    return public_jwk(load_private_key(key), "RS256")["kid"]


def published(t: Target, alg: str = "RS256", key: int = 0) -> str:
    """Signed with key number ``key`` under the kid of the published RS256 key."""
    return key_assertion(t, pem("RS256", key), alg, kid(pem("RS256")))


KEY_CASES: dict[str, Callable[[Target], str]] = {
    "good (kid)": lambda t: published(t),
    "no kid": lambda t: key_assertion(t, pem("RS256")),
    "unknown kid": lambda t: key_assertion(t, pem("RS256"), kid="not-published"),
    "another key under the kid": lambda t: published(t, key=50),
    "PS256 with the RS256 key": lambda t: published(t, "PS256"),
    "HS256 to a key client": lambda t: key_assertion(t, "a-secret-" * 5, "HS256"),
}


def send_assertion(target: Target, assertion: str) -> tuple[int, str, str]:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion,
    }
    answer = requests.post(target.token_endpoint, data=form, timeout=10)
    body = answer.json()
    return answer.status_code, body.get("error", "-"), body.get("error_description", "-")


def test_fake_and_real_keycloak_agree_on_key_clients(
    keycloak_server: str, jwks_server: JwksServer, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    # Every key the tests use is published (see with_key_clients), pem("RS256") first.
    settings.KEYCLOAK_JWT_AUTH = with_key_clients(keycloak_server)
    key_client = FakeClient(
        KEY_CLIENT, algorithm=None, jwks_url=f"{jwks_server.url}/{KEY_CLIENT}.json"
    )
    with FakeKeycloak(clients=[key_client]) as fake:
        real, faked = Target(f"{keycloak_server}/realms/demo", ""), Target(fake.issuer, "")
        rows = [
            (name, send_assertion(real, make(real)), send_assertion(faked, make(faked)))
            for name, make in KEY_CASES.items()
        ]
    with capsys.disabled():
        print("\n| key assertion | Keycloak 26 | FakeKeycloak | same |\n|---|---|---|---|")
        for name, real_answer, fake_answer in rows:
            same = "yes" if real_answer == fake_answer else "NO"
            print(f"| {name} | {_cell(real_answer)} | {_cell(fake_answer)} | {same} |")
    assert [(name, r) for name, r, _ in rows] == [(name, f) for name, _, f in rows]
    assert [name for name, r, _ in rows if r[0] == 200] == ["good (kid)", "no kid"]


# --- the Admin API's support calls: client roles, organizations, sessions, e-mails ------------

SUPPORT_ROLES = ("manage-users", "view-users", "query-users", "query-groups", "view-realm",
                 "view-clients", "query-clients", "manage-organizations", "view-organizations",
                 "query-organizations")  # fmt: skip
Outcome = tuple[Any, ...]


def outcome(do: Callable[[], Any], ids: dict[str, str]) -> Outcome:
    """("ok", the answer with every id named) or (status, Keycloak's words)."""
    try:
        answer = do()
    except AdminAPIError as error:
        return error.status, error.detail(error.body)
    text = json.dumps(answer, sort_keys=True, default=str)
    for id_, name in ids.items():
        text = text.replace(id_, name)
    return "ok", json.loads(text)


def without(items: list[Any], key: str) -> list[Any]:
    """``items`` without ``key``: what differs between two servers by nature (ids, times)."""
    return [{k: v for k, v in item.items() if k != key} for item in items]


def support_scenario(admin: KeycloakAdmin, lacking: KeycloakAdmin) -> list[tuple[str, Outcome]]:
    """The same steps on either server (``lacking``: a client without the roles)."""
    suffix = secrets.token_hex(4)
    ids: dict[str, str] = {}
    user = admin.create_user({"username": f"agree-{suffix}", "email": f"agree-{suffix}@ex.org",
                              "enabled": True})  # fmt: skip
    bare = admin.create_user({"username": f"agree-bare-{suffix}", "enabled": True})
    ids |= {user: "<user>", bare: "<bare>", suffix: "<suffix>"}
    try:
        return _support_steps(admin, lacking, user, bare, ids)
    finally:
        for id_ in (user, bare):
            admin.delete_user(id_)


def _support_steps(
    admin: KeycloakAdmin, lacking: KeycloakAdmin, user: str, bare: str, ids: dict[str, str]
) -> list[tuple[str, Outcome]]:
    suffix = next(k for k, v in ids.items() if v == "<suffix>")
    portal = admin.find_client("demo-portal") or {}
    ids[portal.get("id", "-")] = "<portal>"
    roles = {role["name"]: role for role in admin.client_roles("demo-portal")}
    ids |= {role["id"]: f"<{name}>" for name, role in roles.items()}
    mappings = f"users/{user}/role-mappings/clients/{portal.get('id')}"
    org_name = f"Agree {suffix}"
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("find_client keys", lambda: sorted(set(portal) & {"clientId", "id", "secret"})),
        (
            "clients?clientId has the secret",
            lambda: (
                "secret" in admin.request("GET", "clients", params={"clientId": "demo-portal"})[0]
            ),
        ),  # fmt: skip
        ("client roles", lambda: sorted(roles)),
        ("roles of an unknown client", lambda: admin.request("GET", "clients/nope/roles")),
        (
            "mappings of an unknown client",
            lambda: admin.request("GET", f"users/{user}/role-mappings/clients/nope"),
        ),  # fmt: skip
        (
            "mappings of an unknown user",
            lambda: admin.request("GET", f"users/nope/role-mappings/clients/{portal.get('id')}"),
        ),  # fmt: skip
        (
            "map an unknown role",
            lambda: admin.request(
                "POST", mappings, json=[roles["editor"], {"name": "boss", "id": "x"}]
            ),
        ),  # fmt: skip
        ("map by name only", lambda: admin.request("POST", mappings, json=[{"name": "editor"}])),
        ("assign", lambda: admin.assign_client_roles(user, "demo-portal", ["editor"])),
        ("mapped", lambda: [r["name"] for r in admin.user_client_roles(user, "demo-portal")]),
        ("remove", lambda: admin.remove_client_roles(user, "demo-portal", ["editor"])),
        ("mapped after", lambda: admin.user_client_roles(user, "demo-portal")),
        ("organizations", lambda: without(admin.organizations(search="Acme"), "id")),
        ("name with spaces", lambda: admin.create_organization({"name": org_name})),
        ("no name", lambda: admin.request("POST", "organizations", json={"alias": "x"})),
        (
            "create",
            lambda: ids.setdefault(
                admin.create_organization({"name": org_name, "alias": f"agree-{suffix}"}), "<org>"
            ),
        ),  # fmt: skip
        ("same name", lambda: admin.create_organization({"name": org_name, "alias": "other"})),
        (
            "same alias",
            lambda: admin.create_organization(
                {"name": f"Other {suffix}", "alias": f"agree-{suffix}"}
            ),
        ),  # fmt: skip
    ]
    answers = [(name, outcome(do, ids)) for name, do in steps]
    org = next((k for k, v in ids.items() if v == "<org>"), "nope")
    steps = [
        ("add member", lambda: admin.add_organization_member(org, user)),
        ("add again", lambda: admin.add_organization_member(org, user)),
        ("add unknown user", lambda: admin.add_organization_member(org, "nope")),
        ("add to unknown org", lambda: admin.add_organization_member("nope", user)),
        ("members", lambda: without(admin.organization_members(org), "createdTimestamp")),
        ("user's organizations", lambda: admin.user_organizations(user)),
        ("unknown user's organizations", lambda: admin.user_organizations("nope")),
        ("remove member", lambda: admin.remove_organization_member(org, user)),
        ("remove again", lambda: admin.remove_organization_member(org, user)),
        ("members of unknown org", lambda: admin.organization_members("nope")),
        ("delete org", lambda: admin.delete_organization(org)),
        ("delete again", lambda: admin.delete_organization(org)),
        ("sessions", lambda: admin.user_sessions(user)),
        ("logout", lambda: admin.logout_user(user)),
        ("logout unknown", lambda: admin.logout_user("nope")),
        (
            "email, no SMTP",
            lambda: admin.request(
                "PUT", f"users/{user}/execute-actions-email", json=["VERIFY_EMAIL"]
            ),
        ),  # fmt: skip
        ("email, bad action", lambda: admin.execute_actions_email(user, ["NOT_AN_ACTION"])),
        ("email, no address", lambda: admin.execute_actions_email(bare, ["VERIFY_EMAIL"])),
        ("email, unknown user", lambda: admin.execute_actions_email("nope", ["VERIFY_EMAIL"])),
        ("403 list organizations", lambda: lacking.organizations()),
        ("403 create organization", lambda: lacking.create_organization({"name": "n"})),
        ("403 client roles", lambda: lacking.request("GET", f"clients/{portal.get('id')}/roles")),
        ("403 logout", lambda: lacking.logout_user(user)),
    ]
    answers += [(name, outcome(do, ids)) for name, do in steps]
    return answers


def test_fake_and_real_keycloak_agree_on_the_support_calls(
    keycloak_server: str, settings: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = realm_secrets()["django-support"]
    real_clients = {
        "support": {"CLIENT_ID": "django-support", "CLIENT_SECRET": secret},
        "lacking": {"CLIENT_ID": "django-no-roles",
                    "CLIENT_SECRET": realm_secrets()["django-no-roles"]},
    }  # fmt: skip
    settings.KEYCLOAK_JWT_AUTH = {**client_settings(keycloak_server), "CLIENTS": real_clients}
    real = support_scenario(KeycloakAdmin("support"), KeycloakAdmin("lacking"))
    support = FakeClient("django-support", secret=secret, roles=SUPPORT_ROLES)
    with FakeKeycloak(
        clients=[support, FakeClient("django-no-roles", secret=secret, roles=())]
    ) as fake:
        fake.add_client("demo-portal", secret=realm_secrets()["demo-portal"],
                        service_accounts=False)  # fmt: skip
        for role in ("viewer", "editor"):
            fake.add_client_role("demo-portal", role)
        fake.add_organization("Acme Research", alias="acme-research", members=[
            fake.add_user("ada.lovelace", email="ada.lovelace@example.com")])  # fmt: skip
        fake.organizations[0] |= {"description": "The demo organization.",
                                  "domains": [{"name": "acme-research.example.com",
                                               "verified": False}]}  # fmt: skip
        named = {name: fake.settings(c["CLIENT_ID"]) for name, c in real_clients.items()}
        settings.KEYCLOAK_JWT_AUTH = {**fake.settings(), "CLIENTS": named}
        faked = support_scenario(KeycloakAdmin("support"), KeycloakAdmin("lacking"))
    with capsys.disabled():
        print("\n| support call | Keycloak 26 | FakeKeycloak | same |\n|---|---|---|---|")
        for (name, real_answer), (_, fake_answer) in zip(real, faked, strict=True):
            same = "yes" if real_answer == fake_answer else "NO"
            print(f"| {name} | {str(real_answer)[:90]} | {str(fake_answer)[:90]} | {same} |")
    assert real == faked
