"""One client's ``ClientConfig``, built from the ``KEYCLOAK_JWT_AUTH`` setting.

``build_client_config`` validates (the same rules the system checks report), reads the key
files once and returns a new config. It keeps nothing: ``clients[name].config`` (clients.py)
keeps one per client name until the settings change.
"""

from __future__ import annotations

import dataclasses
import os

from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.masked import Masked

from .credential_rules import algorithm_of, dpop_algorithm_of, uses_keys
from .defaults import (
    FEDERATED_METHOD,
    SETTING_NAME,
    Timeout,
    as_timeout,
    lock_seconds,
    quote_segment,
    realm_issuer,
)
from .problems import Problem
from .reading import raw_client_settings
from .rules import settings_problems, shape_problem

__all__ = ["ClientConfig", "build_client_config"]


@dataclasses.dataclass(frozen=True)
class ClientConfig:
    """The resolved settings of one client. Its repr never shows the secret."""

    name: str
    server_url: str
    realm: str
    client_id: str
    auth_method: str
    client_secret: str = dataclasses.field(repr=False)  # "" with private_key_jwt
    fallback_secrets: tuple[str, ...] = dataclasses.field(repr=False)
    private_key: str | None = dataclasses.field(repr=False)  # PEM text
    next_private_key: str | None = dataclasses.field(repr=False)
    key_id: str | None
    algorithm: str
    assertion_typ: str
    audience: str
    token_endpoint: str
    scope: str | None
    assertion_lifetime: int
    cache_alias: str
    refresh_margin: float
    timeout: Timeout
    verify: bool | str
    retries: int
    background_refresh: bool
    lock_timeout: float
    # DPoP (RFC 9449): the PEM of the key tokens are bound to, and the proofs' algorithm.
    dpop_key: str | None = dataclasses.field(default=None, repr=False)
    dpop_algorithm: str | None = None
    # federated_jwt: where the external JWT comes from (a path, or a callable's dotted path).
    assertion_file: str | None = None
    assertion_provider: str | None = None

    @property
    def issuer(self) -> str:
        return realm_issuer(self.server_url, self.realm)

    @property
    def admin_url(self) -> str:
        return f"{self.server_url}/admin/realms/{quote_segment(self.realm)}"

    def __repr__(self) -> str:
        return (
            f"ClientConfig(name={self.name!r}, client_id={self.client_id!r}, "
            f"realm={self.realm!r}, server_url={self.server_url!r}, "
            f"auth_method={self.auth_method!r}, algorithm={self.algorithm!r}, "
            "client_secret='********')"
        )


@sensitive_variables("raw")
def build_client_config(name: str) -> ClientConfig:
    """A new config for client ``name``; raises ``ConfigurationError`` when it is unusable."""
    shape = shape_problem()
    if shape is not None:
        raise unusable(name, [shape])
    raw = raw_client_settings(name)
    errors = [problem for problem in settings_problems(name, raw) if problem.is_error]
    if errors:
        raise unusable(name, errors)
    server_url = str(raw["SERVER_URL"]).rstrip("/")
    realm = str(raw["REALM"])
    issuer = realm_issuer(server_url, realm)
    keys = uses_keys(raw)
    federated = raw["AUTH_METHOD"] == FEDERATED_METHOD
    secretless = keys or federated
    federated_file = federated and bool(raw["ASSERTION_FILE"])
    federated_provider = federated and not federated_file
    timeout = as_timeout(raw["TIMEOUT"])
    return ClientConfig(
        name=name,
        server_url=server_url,
        realm=realm,
        client_id=str(raw["CLIENT_ID"]),
        auth_method=raw["AUTH_METHOD"],
        client_secret=Masked("" if secretless else raw["CLIENT_SECRET"]),
        fallback_secrets=() if secretless else tuple(map(Masked, raw["FALLBACK_SECRETS"] or ())),
        private_key=raw.pem("PRIVATE_KEY") if keys else None,  # read by the rules already
        next_private_key=raw.pem("NEXT_PRIVATE_KEY") if keys else None,
        key_id=raw["KEY_ID"] or None,
        algorithm=algorithm_of(raw),
        assertion_typ=raw["ASSERTION_TYP"],
        audience=raw["AUDIENCE"] or issuer,
        token_endpoint=raw["TOKEN_ENDPOINT"] or f"{issuer}/protocol/openid-connect/token",
        scope=raw["SCOPE"] or None,
        assertion_lifetime=int(raw["ASSERTION_LIFETIME"]),
        cache_alias=raw["CACHE_ALIAS"],
        refresh_margin=float(raw["REFRESH_MARGIN"]),
        timeout=timeout,
        verify=raw["VERIFY"],
        retries=int(raw["RETRIES"]),
        background_refresh=bool(raw["BACKGROUND_REFRESH"]),
        lock_timeout=lock_seconds(raw["LOCK_TIMEOUT"], timeout),
        dpop_key=raw.pem("DPOP_KEY"),  # read by the rules already
        dpop_algorithm=dpop_algorithm_of(raw),
        # Only a federated client's (its rules checked their types); others ignore them (W041).
        assertion_file=os.fspath(raw["ASSERTION_FILE"]) if federated_file else None,
        assertion_provider=raw["ASSERTION_PROVIDER"] if federated_provider else None,
    )


def unusable(name: str, errors: list[Problem]) -> ConfigurationError:
    return ConfigurationError(f"Keycloak client {name!r} cannot be used: {summary(errors)}")


def summary(problems: list[Problem]) -> str:
    """One line: keys that share a problem are named together ("REALM, CLIENT_ID: ...")."""
    keys_by_text: dict[str, list[str]] = {}
    for problem in problems:
        keys_by_text.setdefault(problem.text, []).append(problem.key or SETTING_NAME)
    parts = [
        f"{', '.join(keys)} {_agreeing(text, len(keys))}" for text, keys in keys_by_text.items()
    ]
    return "; ".join(parts) + ". Run 'manage.py check' for hints."


def _agreeing(text: str, subjects: int) -> str:
    """ "is missing" after one key, "are missing" after several."""
    return "are" + text[2:] if subjects > 1 and text.startswith("is ") else text
