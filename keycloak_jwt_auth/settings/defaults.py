"""What ``KEYCLOAK_JWT_AUTH`` may hold: setting names, every key's default and meaning, and the
constants the rules and the config share."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

SETTING_NAME = "KEYCLOAK_JWT_AUTH"
DEMO_SETTING_NAME = "KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS"
DEMO_WRITE_SETTING_NAME = "KEYCLOAK_JWT_AUTH_DEMO_WRITE_CLIENT"
DEFAULT_CLIENT = "default"
SECRET_METHOD, KEY_METHOD = "client_secret_jwt", "private_key_jwt"
# Keycloak's federated client authentication: the assertion is a JWT from another issuer.
FEDERATED_METHOD = "federated_jwt"
AUTH_METHODS = (SECRET_METHOD, KEY_METHOD, FEDERATED_METHOD)
ALGORITHMS = ("HS256", "HS384", "HS512")
# A federated client signs nothing: its "algorithm" is the external issuer's, never chosen here.
DEFAULT_ALGORITHM = {SECRET_METHOD: "HS256", KEY_METHOD: "RS256", FEDERATED_METHOD: "external"}
SECRET_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}  # RFC 7518 section 3.2
# Settings whose change makes every derived value (configs, managers, sessions) stale.
CLIENT_SETTINGS = frozenset({SETTING_NAME, "CACHES"})

Timeout = float | tuple[float, float]
DEFAULT_TIMEOUT: Timeout = (5.0, 10.0)  # (connect, read) seconds

DEFAULTS: dict[str, Any] = {
    "SERVER_URL": None,
    "REALM": None,
    "CLIENT_ID": None,
    "AUTH_METHOD": SECRET_METHOD,
    "CLIENT_SECRET": None,
    "FALLBACK_SECRETS": (),  # further secrets, tried in order when the signature is refused
    "PRIVATE_KEY": None,  # PEM text (private_key_jwt), or:
    "PRIVATE_KEY_FILE": None,
    "NEXT_PRIVATE_KEY": None,  # published in the JWKS before it signs (key rotation), or:
    "NEXT_PRIVATE_KEY_FILE": None,
    "KEY_ID": None,  # None: the key's RFC 7638 thumbprint
    "ALGORITHM": None,  # None: HS256 (client_secret_jwt) or RS256 (private_key_jwt)
    # The assertion's JOSE "typ" header: RFC 10070's explicit type (Keycloak 26.7 accepts any
    # typ); "JWT" for a server that insists on the old one.
    "ASSERTION_TYP": "client-authentication+jwt",
    "AUDIENCE": None,  # None: the realm issuer URL
    "TOKEN_ENDPOINT": None,  # None: derived from SERVER_URL and REALM
    "SCOPE": None,
    "ASSERTION_LIFETIME": 60,
    "CACHE_ALIAS": "default",
    "REFRESH_MARGIN": 30,
    "TIMEOUT": DEFAULT_TIMEOUT,
    "VERIFY": True,
    "RETRIES": 2,
    "BACKGROUND_REFRESH": True,
    "LOCK_TIMEOUT": None,  # None: one request's worst case (connect + read timeout) + 5 s
    "DPOP_KEY": None,  # PEM text of the key DPoP-bound tokens are bound to (RFC 9449), or:
    "DPOP_KEY_FILE": None,
    "DPOP_ALGORITHM": None,  # None: from the key (P-256: ES256, RSA: PS256, Ed25519: EdDSA)
    "ASSERTION_FILE": None,  # federated_jwt: the path of a file holding another issuer's JWT, or:
    "ASSERTION_PROVIDER": None,  # the dotted path of a callable returning one
}
LOCK_MARGIN = 5.0  # seconds the renewal lock outlives one request's worst case
ASSERTION_LIFETIME_WARNING = 60  # RFC 7523 deployments, Keycloak among them, expect <= 60 s
CLIENT_KEYS = frozenset(DEFAULTS)
KEY_SETTINGS = {"PRIVATE_KEY": "PRIVATE_KEY_FILE", "NEXT_PRIVATE_KEY": "NEXT_PRIVATE_KEY_FILE"}
FILE_KEYS = tuple(KEY_SETTINGS.values())  # str or os.PathLike
# Every setting that holds a private key (PEM text) and the setting naming its file.
PEM_SETTINGS = {**KEY_SETTINGS, "DPOP_KEY": "DPOP_KEY_FILE"}
# The DPoP proof algorithm a key signs with when DPOP_ALGORITHM is unset, by key family.
DPOP_DEFAULT_ALGORITHM = {
    "P-256": "ES256",
    "P-384": "ES384",
    "P-521": "ES512",
    "RSA": "PS256",
    "Ed25519": "EdDSA",
}

# One line per key, as the README's settings table says it (the reference page is built from it).
DESCRIPTIONS: dict[str, str] = {
    "SERVER_URL": "Keycloak base URL, without `/realms/...` (required)",
    "REALM": "realm of the service-account client (required)",
    "CLIENT_ID": "client id; `iss` and `sub` of the assertion (required)",
    "AUTH_METHOD": "`client_secret_jwt`, `private_key_jwt`, or `federated_jwt` (a JWT from "
    "another issuer Keycloak trusts, e.g. a Kubernetes service-account token)",
    "CLIENT_SECRET": "the shared secret (required with `client_secret_jwt`); never logged, "
    "never sent",
    "FALLBACK_SECRETS": "further secrets tried in order when Keycloak refuses the signature "
    "(secret rotation)",
    "PRIVATE_KEY": "the private key as PEM text (this or `PRIVATE_KEY_FILE` is required with "
    "`private_key_jwt`)",
    "PRIVATE_KEY_FILE": "the path of a PEM file (unencrypted PKCS#8 or traditional) holding "
    "the private key",
    "NEXT_PRIVATE_KEY": "a second key published in the JWKS (rotation); it signs only when "
    "Keycloak refuses the current one",
    "NEXT_PRIVATE_KEY_FILE": "the path of a PEM file holding `NEXT_PRIVATE_KEY`",
    "KEY_ID": "`kid` of the current key (default: its RFC 7638 thumbprint; the next key's is "
    "always its thumbprint)",
    "ALGORITHM": "`HS256`, `HS384`, `HS512` with a secret (default `HS256`); `RS256`, "
    "`RS384`, `RS512`, `PS256`, `PS384`, `PS512`, `ES256`, `ES384`, `ES512`, `EdDSA` with a "
    "key (default `RS256`)",
    "ASSERTION_TYP": "the assertion's JOSE `typ` (RFC 10070); `JWT` for a server that wants "
    "the old one",
    "AUDIENCE": "`aud` of the assertion, one string (default: the realm issuer URL)",
    "TOKEN_ENDPOINT": "override for proxies (default: "
    "`{SERVER_URL}/realms/{REALM}/protocol/openid-connect/token`)",
    "SCOPE": "`scope` sent with the token request",
    "ASSERTION_LIFETIME": "seconds, at least 1; a check warns above 60 (a captured assertion "
    "stays redeemable that long)",
    "CACHE_ALIAS": "which of `CACHES` holds the token",
    "REFRESH_MARGIN": "renew this many seconds before expiry, but never more than a third of "
    "the token's lifetime early",
    "TIMEOUT": "seconds: one number or a `(connect, read)` pair, always applied",
    "VERIFY": "TLS verification: `True`, or the path of an existing CA bundle; `False` turns "
    "it off (a deploy-check warning)",
    "RETRIES": "retries after a connection error, timeout or 5xx (jittered exponential "
    "back-off, fresh assertion each time); 4xx is never retried",
    "BACKGROUND_REFRESH": "renew in a background thread; `False`: the one caller that wins "
    "the renewal fetches inline",
    "LOCK_TIMEOUT": "seconds the cross-process renewal lock lives (default: one request's "
    "worst case + 5 s, 20 with the default `TIMEOUT`)",
    "DPOP_KEY": "a private key (PEM text) that makes the client's tokens DPoP-bound (RFC 9449): "
    "every token request and call carries a proof signed with it; see docs/dpop.md",
    "DPOP_KEY_FILE": "the path of a PEM file holding `DPOP_KEY`",
    "DPOP_ALGORITHM": "the proofs' algorithm (default from the key: `ES256` for P-256, `PS256` "
    "for RSA, `EdDSA` for Ed25519)",
    "ASSERTION_FILE": "`federated_jwt`: the path of a file holding the JWT sent as the client "
    "assertion (a projected service-account token); read again whenever it changes",
    "ASSERTION_PROVIDER": "`federated_jwt`: the dotted path of a callable returning that JWT "
    "as a string, called for every token request",
}

# (key, default, meaning) rows of the settings reference.
SETTINGS_REFERENCE: list[tuple[str, str, str]] = [
    (key, repr(default), DESCRIPTIONS[key]) for key, default in DEFAULTS.items()
]


def one_request_seconds(timeout: Timeout) -> float:
    """The worst case of one request: connect and read both taking their whole timeout."""
    return float(sum(timeout)) if isinstance(timeout, tuple) else 2.0 * timeout


def as_timeout(value: Any) -> Timeout:
    """``None`` means the default (never "no timeout"); a [connect, read] list becomes the
    tuple requests expects."""
    if value is None:
        return DEFAULT_TIMEOUT
    return (float(value[0]), float(value[1])) if isinstance(value, (list, tuple)) else value


def lock_seconds(value: Any, timeout: Timeout) -> float:
    """``LOCK_TIMEOUT``, by default one request's worst case plus ``LOCK_MARGIN``."""
    return one_request_seconds(timeout) + LOCK_MARGIN if value is None else float(value)


def realm_issuer(server_url: str, realm: str) -> str:
    return f"{server_url.rstrip('/')}/realms/{quote_segment(realm)}"


def quote_segment(value: str) -> str:
    """One URL path segment: '/', '?', '#', spaces... are quoted, so it stays one segment."""
    return quote(value, safe="")
