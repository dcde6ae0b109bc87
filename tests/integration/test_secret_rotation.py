"""Rotating a client_secret_jwt client's secret with the real Keycloak, in both orders, without a
failed token request. django-secret-rotator (manage-clients) changes the secrets through the
Admin API; django-rotation-policy is under the realm's secret-rotation policy (Keycloak keeps the
rotated secret valid for an hour), django-rotation is not (Keycloak accepts one secret)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from keycloak_jwt_auth import ServiceAccountAuth, UnauthorizedClientError, get_access_token
from support.proxy import RecordingProxy
from support.realm import realm_secret

from .conftest import KEYCLOAK_PORT, client_settings

pytestmark = pytest.mark.keycloak


class SecretRotator:
    """Keycloak's side of a rotation, through the Admin API (client ``rotator``)."""

    def __init__(self, server_url: str, client_id: str) -> None:
        self.auth = ServiceAccountAuth("rotator")
        admin = f"{server_url}/admin/realms/demo/clients"
        found = requests.get(admin, params={"clientId": client_id}, auth=self.auth, timeout=10)
        self.url = f"{admin}/{found.json()[0]['id']}"

    def current(self) -> str:
        return str(self._call("GET", "/client-secret").json()["value"])

    def regenerate(self) -> str:
        """Keycloak's "Regenerate": a new random secret."""
        return str(self._call("POST", "/client-secret").json()["value"])

    def set(self, secret: str) -> None:
        """A secret the operator chose (kcadm or the Admin API; the console only regenerates)."""
        client = self._call("GET", "").json()
        self._call("PUT", "", json={**client, "secret": secret})

    def end_grace(self) -> None:
        """What the end of the policy's rotated-expiration-period does."""
        self._call("DELETE", "/client-secret/rotated")

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = requests.request(method, self.url + path, auth=self.auth, timeout=10, **kwargs)
        response.raise_for_status()
        return response


class Deployment:
    """The app's settings: ``deploy(client_id, secret, *fallbacks)`` for the client named
    ``rotating``, whose token requests go through a recording proxy."""

    def __init__(self, server_url: str, proxy: RecordingProxy, settings: Any) -> None:
        self.server_url, self.proxy, self.settings = server_url, proxy, settings
        self("django-rotation", "not-deployed-yet")

    def __call__(self, client_id: str, secret: str, *fallbacks: str) -> None:
        base = client_settings(self.server_url)
        rotator = "django-secret-rotator"
        clients = {
            "rotator": {"CLIENT_ID": rotator, "CLIENT_SECRET": realm_secret(rotator)},
            "rotating": {
                "SERVER_URL": self.proxy.url,
                "CLIENT_ID": client_id,
                "CLIENT_SECRET": secret,
                "FALLBACK_SECRETS": list(fallbacks),
            },
        }
        self.settings.KEYCLOAK_JWT_AUTH = {**base, "CLIENTS": {**base["CLIENTS"], **clients}}

    def statuses(self) -> list[int]:
        return [r.status for r in self.proxy.token_requests()]


@pytest.fixture
def deploy(keycloak_server: str, settings: Any) -> Iterator[Deployment]:
    with RecordingProxy("127.0.0.1", KEYCLOAK_PORT) as proxy:
        yield Deployment(keycloak_server, proxy, settings)


def calls(count: int = 3) -> int:
    """``count`` token requests (each a new token); how many failed."""
    failed = 0
    for _ in range(count):
        try:
            get_access_token("rotating", force_refresh=True)
        except UnauthorizedClientError:
            failed += 1
    return failed


def test_deploying_the_new_secret_first(keycloak_server: str, deploy: Deployment) -> None:
    keycloak = SecretRotator(keycloak_server, "django-rotation")
    old, new = keycloak.current(), secrets.token_urlsafe(36)

    deploy("django-rotation", new, old)  # 1. the app knows both, Keycloak the old one
    failed = calls()
    keycloak.set(new)  # 2. Keycloak switches
    failed += calls()
    deploy("django-rotation", new)  # 3. the fallback goes
    failed += calls()

    statuses = deploy.statuses()
    print(f"\ndeploy first: 9 calls, {failed} failed, token requests: {statuses}")
    assert failed == 0
    # New refused, old accepted (and remembered); after the switch, old refused once.
    assert statuses == [400, 200, 200, 200] + [400, 200, 200, 200] + [200, 200, 200]


def test_rotating_in_keycloak_first_with_its_rotation_policy(
    keycloak_server: str, deploy: Deployment
) -> None:
    keycloak = SecretRotator(keycloak_server, "django-rotation-policy")
    old = keycloak.current()

    deploy("django-rotation-policy", old)
    failed = calls()
    new = keycloak.regenerate()  # 1. Keycloak: the old secret stays valid for an hour
    failed += calls()
    deploy("django-rotation-policy", new, old)  # 2. the app gets the new one
    failed += calls()
    keycloak.end_grace()  # 3. the hour is over
    failed += calls()

    statuses = deploy.statuses()
    print(f"\nKeycloak first, its policy: 12 calls, {failed} failed, token requests: {statuses}")
    assert failed == 0
    assert statuses == [200] * 12  # not one refusal: the new secret was accepted from step 2


def test_without_the_policy_rotating_in_keycloak_first_fails_until_the_app_knows(
    keycloak_server: str, deploy: Deployment
) -> None:
    keycloak = SecretRotator(keycloak_server, "django-rotation")
    old = keycloak.current()
    deploy("django-rotation", old)
    new = keycloak.regenerate()
    with pytest.raises(UnauthorizedClientError, match="Signature on JWT token by client secret"):
        get_access_token("rotating", force_refresh=True)
    deploy("django-rotation", new)
    assert calls(1) == 0
