"""FakeKeycloak and the real Keycloak 26 answer the same assertions the same way: the same set of
good and bad assertions, sent to both, gets the same status, ``error`` and description."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
import requests

from keycloak_jwt_auth.assertion import ASSERTION_TYPE
from keycloak_jwt_auth.testing import FakeClient, FakeKeycloak
from support.realm import realm_secrets

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
