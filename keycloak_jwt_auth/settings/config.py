"""Settings: the ``KEYCLOAK_JWT_AUTH`` dict merged with defaults, one ``ClientConfig`` per client.

Top-level keys configure the client named ``"default"``; ``"CLIENTS"`` adds named clients whose
keys override the top-level ones. Configs are built on first use and dropped when Django's
``setting_changed`` signal fires (so ``override_settings`` just works).

The rules a client's settings must follow are written once, in ``client_problems``: the system
checks report that list, and ``get_client_config`` refuses a client with an error in it.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.exceptions import ConfigurationError
from keycloak_jwt_auth.keys import (
    INSTALL_HINT,
    KEY_ALGORITHMS,
    KeyProblem,
    cryptography_installed,
    key_mismatch,
    key_weakness,
    load_private_key,
    same_key,
)
from keycloak_jwt_auth.masked import Masked

SETTING_NAME = "KEYCLOAK_JWT_AUTH"
DEMO_SETTING_NAME = "KEYCLOAK_JWT_AUTH_DEMO_ALLOW_ANONYMOUS"
DEMO_WRITE_SETTING_NAME = "KEYCLOAK_JWT_AUTH_DEMO_WRITE_CLIENT"
DEFAULT_CLIENT = "default"
SECRET_METHOD, KEY_METHOD = "client_secret_jwt", "private_key_jwt"
AUTH_METHODS = (SECRET_METHOD, KEY_METHOD)
ALGORITHMS = ("HS256", "HS384", "HS512")
DEFAULT_ALGORITHM = {SECRET_METHOD: "HS256", KEY_METHOD: "RS256"}
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
}
LOCK_MARGIN = 5.0  # seconds the renewal lock outlives one request's worst case
ASSERTION_LIFETIME_WARNING = 60  # RFC 7523 deployments, Keycloak among them, expect <= 60 s
CLIENT_KEYS = frozenset(DEFAULTS)


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


def realm_issuer(server_url: str, realm: str) -> str:
    return f"{server_url.rstrip('/')}/realms/{quote_segment(realm)}"


def quote_segment(value: str) -> str:
    """One URL path segment: '/', '?', '#', spaces... are quoted, so it stays one segment."""
    return quote(value, safe="")


def one_request_seconds(timeout: Timeout) -> float:
    """The worst case of one request: connect and read both taking their whole timeout."""
    return float(sum(timeout)) if isinstance(timeout, tuple) else 2.0 * timeout


def demo_views_allow_anonymous() -> bool:
    return bool(getattr(settings, DEMO_SETTING_NAME, False))


def demo_write_client() -> str:
    """The client the demo's "create user" form writes with (it needs manage-users)."""
    return str(getattr(settings, DEMO_WRITE_SETTING_NAME, DEFAULT_CLIENT))


# --- reading the setting ---------------------------------------------------------------------


def user_settings() -> Mapping[str, Any]:
    return getattr(settings, SETTING_NAME, None) or {}


def client_names() -> list[str]:
    clients = user_settings().get("CLIENTS") or {}
    return [DEFAULT_CLIENT, *(name for name in clients if name != DEFAULT_CLIENT)]


def own_client_settings(name: str) -> Mapping[str, Any]:
    """The keys the user wrote for client ``name`` (top level for the default client)."""
    top = user_settings()
    if name == DEFAULT_CLIENT:
        return {k: v for k, v in top.items() if k != "CLIENTS"}
    return (top.get("CLIENTS") or {}).get(name) or {}


def raw_client_settings(name: str = DEFAULT_CLIENT) -> dict[str, Any]:
    """The merged (defaults < top level < CLIENTS[name]) dict, without validation."""
    if name not in client_names():
        # No settings dict in this frame: error pages show frame locals, secrets included.
        known = ", ".join(client_names())
        raise ConfigurationError(f"Unknown Keycloak client {name!r}; configured: {known}.")
    named = (user_settings().get("CLIENTS") or {}).get(name) if name != DEFAULT_CLIENT else {}
    return {**DEFAULTS, **own_client_settings(DEFAULT_CLIENT), **(named or {})}


# --- the one validation ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a client's settings. ``id`` is the system check's id: ``E...``
    problems stop the client from working, ``W...`` ones are warnings; ``deploy`` ones are
    reported by ``manage.py check --deploy`` only."""

    id: str
    key: str | None
    text: str  # reads after the key: "SERVER_URL" + " is not an http(s) URL: ..."
    hint: str
    deploy: bool = False

    @property
    def is_error(self) -> bool:
        return self.id.startswith("E")


REQUIRED = {
    "SERVER_URL": ("E002", "the base URL of Keycloak, e.g. 'https://sso.example.com'"),
    "REALM": ("E003", "the realm of the service-account client, e.g. 'demo'"),
    "CLIENT_ID": ("E004", "the client id of a confidential client with service accounts on"),
    "CLIENT_SECRET": (
        "E005",
        "the client's secret (Keycloak: Clients > Credentials); read it from the environment, "
        "e.g. KEYCLOAK_CLIENT_SECRET, never commit it",
    ),
}
NUMBERS_HINT = (
    "ASSERTION_LIFETIME is seconds (default 60); LOCK_TIMEOUT seconds or None (default: one "
    "request's worst case + 5 s); REFRESH_MARGIN seconds (default 30); RETRIES a count "
    "(default 2); TIMEOUT finite seconds or a (connect, read) pair (default (5, 10))."
)
STRING_KEYS = (
    *("CLIENT_ID", "CLIENT_SECRET", "SCOPE", "AUDIENCE"),
    *("KEY_ID", "PRIVATE_KEY", "NEXT_PRIVATE_KEY", "ASSERTION_TYP"),
)
FILE_KEYS = ("PRIVATE_KEY_FILE", "NEXT_PRIVATE_KEY_FILE")  # str or os.PathLike
URL_HINT = (
    "SERVER_URL is Keycloak's base URL without '/realms/...', e.g. 'https://sso.example.com'; "
    "TOKEN_ENDPOINT is a full URL."
)

Rule = Callable[[Mapping[str, Any]], Iterator[Problem]]
RULES: list[Rule] = []


def rule(function: Rule) -> Rule:
    RULES.append(function)
    return function


def shape_problem() -> Problem | None:
    """The setting itself is not a dict (of dicts, for CLIENTS): nothing else can be read."""
    value = getattr(settings, SETTING_NAME, None)
    clients = value.get("CLIENTS") if isinstance(value, Mapping) else None
    if value is not None and not isinstance(value, Mapping):
        key, text = None, f"must be a dict, not {type(value).__name__}"
    elif clients is not None and not (
        isinstance(clients, Mapping) and all(isinstance(c, Mapping) for c in clients.values())
    ):
        key, text = "CLIENTS", "must be a dict of dicts, one per named client"
    else:
        return None
    hint = "See the README: {'SERVER_URL': ..., 'REALM': ..., 'CLIENTS': {'name': {...}}}."
    return Problem("E001", key, text, hint)


@sensitive_variables()
def client_problems(name: str) -> list[Problem]:
    """Everything wrong with client ``name``'s settings, in a stable order."""
    shape = shape_problem()
    if shape is not None:
        return [shape]
    raw = raw_client_settings(name)
    unknown = [
        Problem(
            "W004",
            key,
            "is not a setting of keycloak_jwt_auth and is ignored",
            f"Known keys: {', '.join(sorted(CLIENT_KEYS))} (and CLIENTS at the top level).",
        )
        for key in own_client_settings(name)
        if key not in CLIENT_KEYS
    ]
    return [problem for check in RULES for problem in check(raw)] + unknown


def algorithm_of(raw: Mapping[str, Any]) -> Any:
    """``ALGORITHM``, or the default of the client's ``AUTH_METHOD``."""
    method = raw["AUTH_METHOD"]
    return raw["ALGORITHM"] or DEFAULT_ALGORITHM.get(method if isinstance(method, str) else "")


def uses_keys(raw: Mapping[str, Any]) -> bool:
    return bool(raw["AUTH_METHOD"] == KEY_METHOD)


@rule
def _required(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key, (check_id, meaning) in REQUIRED.items():
        if key == "CLIENT_SECRET" and raw["AUTH_METHOD"] != SECRET_METHOD:
            continue
        if not raw[key]:
            yield Problem(check_id, key, "is missing or empty", f"Set it to {meaning}.")


@rule
def _auth_method(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["AUTH_METHOD"] not in AUTH_METHODS:
        yield Problem(
            "E014",
            "AUTH_METHOD",
            f"is {raw['AUTH_METHOD']!r}, not one of {', '.join(AUTH_METHODS)}",
            "Use 'client_secret_jwt' (Keycloak: 'Signed JWT with Client Secret') or "
            "'private_key_jwt' (Keycloak: 'Signed JWT').",
        )


@rule
def _algorithm(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["AUTH_METHOD"] not in AUTH_METHODS:
        return
    method = raw["AUTH_METHOD"]
    allowed = KEY_ALGORITHMS if uses_keys(raw) else ALGORITHMS
    if algorithm_of(raw) not in allowed:
        yield Problem(
            "E006",
            "ALGORITHM",
            f"is {raw['ALGORITHM']!r}, which Keycloak's {method} does not use "
            f"(one of {', '.join(allowed)})",
            f"Use one of {', '.join(allowed)}, the same as the client's 'Signature "
            "algorithm' in Keycloak (Clients > Credentials).",
        )


def _url_problem(key: str, value: Any) -> str | None:
    if not isinstance(value, str):
        return "is not a string"
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"is not an http(s) URL: {value!r}"
    if any(c.isspace() or not c.isprintable() for c in value):
        return f"contains spaces or control characters: {value!r}"
    if parts.username is not None or parts.fragment or "#" in value:
        return f"has a user name or a #fragment: {value!r}"
    if key == "SERVER_URL" and (parts.query or "?" in value):
        return f"has a query string: {value!r}"
    if key == "SERVER_URL" and "/realms/" in f"{value}/":
        return f"includes '/realms/...': {value!r}"
    return None


@rule
def _urls(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key in ("SERVER_URL", "TOKEN_ENDPOINT"):
        problem = _url_problem(key, raw[key]) if raw[key] else None
        if problem:
            yield Problem("E007", key, problem, URL_HINT)
        elif isinstance(raw[key], str) and raw[key].lower().startswith("http://"):
            text, hint = "uses http://: tokens travel unencrypted", "Use https:// in production."
            yield Problem("W101", key, text, hint, deploy=True)


@rule
def _cache_alias(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["CACHE_ALIAS"] not in settings.CACHES:
        yield Problem(
            "E008",
            "CACHE_ALIAS",
            f"is {raw['CACHE_ALIAS']!r}, which is not in CACHES",
            f"Use one of {', '.join(map(repr, settings.CACHES))} or add it to CACHES.",
        )


def _is_number(value: Any, *, minimum: float, inclusive: bool) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    if not math.isfinite(value):
        return False
    return value >= minimum if inclusive else value > minimum


def _invalid_numbers(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if not _is_number(raw["ASSERTION_LIFETIME"], minimum=1, inclusive=True):
        yield "ASSERTION_LIFETIME", f"must be at least 1 second, not {raw['ASSERTION_LIFETIME']!r}"
    lock = raw["LOCK_TIMEOUT"]
    if lock is not None and not _is_number(lock, minimum=0, inclusive=False):
        yield "LOCK_TIMEOUT", f"must be a number of seconds above 0 (or None), not {lock!r}"
    for key in ("REFRESH_MARGIN", "RETRIES"):
        if not _is_number(raw[key], minimum=0, inclusive=True):
            yield key, f"must be a number of at least 0, not {raw[key]!r}"
    timeout = raw["TIMEOUT"]
    pair = isinstance(timeout, (tuple, list))
    parts = timeout if pair else (timeout,)
    if timeout is not None and not (
        len(parts) == (2 if pair else 1)
        and all(_is_number(p, minimum=0, inclusive=False) for p in parts)
    ):
        yield (
            "TIMEOUT",
            f"must be seconds above 0, or a (connect, read) pair of them, not {timeout!r}",
        )


@rule
def _numbers(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key, text in _invalid_numbers(raw):
        yield Problem("E009", key, text, NUMBERS_HINT)


@rule
def _secret_length(raw: Mapping[str, Any]) -> Iterator[Problem]:
    needed = SECRET_BYTES.get(algorithm_of(raw))
    fallbacks = raw["FALLBACK_SECRETS"]
    fallbacks = fallbacks if isinstance(fallbacks, (list, tuple)) else ()
    secrets = {"CLIENT_SECRET": raw["CLIENT_SECRET"]}
    secrets.update((f"FALLBACK_SECRETS[{i}]", secret) for i, secret in enumerate(fallbacks))
    for key, secret in secrets.items():
        if secret and needed and len(str(secret).encode()) < needed:
            yield Problem(
                "W001",
                key,
                f"is shorter than {needed} bytes, the minimum key size for {algorithm_of(raw)} "
                "(RFC 7518 section 3.2)",
                "Regenerate the client secret in Keycloak (Credentials > Regenerate); its "
                "generated secrets are long enough.",
            )


@rule
def _tls_verification(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["VERIFY"] is False:
        yield Problem(
            "W102",
            "VERIFY",
            "is False: Keycloak's TLS certificate is not verified",
            "Remove VERIFY, or set it to the path of your CA bundle.",
            deploy=True,
        )


@rule
def _realm(raw: Mapping[str, Any]) -> Iterator[Problem]:
    realm = raw["REALM"]
    if realm and (not isinstance(realm, str) or realm.strip() in (".", "..")):
        yield Problem(
            "E013",
            "REALM",
            f"is {realm!r}, which is not a realm name",
            "Use the realm's name as Keycloak shows it (Realm settings > General).",
        )


@rule
def _verify(raw: Mapping[str, Any]) -> Iterator[Problem]:
    verify = raw["VERIFY"]
    if verify is True or verify is False:
        return
    if not isinstance(verify, str) or not verify or not os.path.exists(verify):
        yield Problem(
            "E010",
            "VERIFY",
            f"is {verify!r}: only True, False or the path of an existing CA bundle are "
            "accepted (0, '' or 'false' would silently mean something else)",
            "Remove VERIFY (True: the system's CAs), or give the path of a CA bundle file.",
        )


@rule
def _strings(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key in STRING_KEYS + FILE_KEYS:
        path_like = key in FILE_KEYS and isinstance(raw[key], os.PathLike)
        if raw[key] and not isinstance(raw[key], str) and not path_like:
            yield Problem(
                "E011",
                key,
                f"must be one string, not {type(raw[key]).__name__}",
                "SCOPE is space-separated ('email profile'); AUDIENCE one URL (Keycloak "
                "refuses an assertion with several audiences); read secrets and keys as text; "
                "*_FILE settings are paths.",
            )


@rule
def _secret_whitespace(raw: Mapping[str, Any]) -> Iterator[Problem]:
    secret = raw["CLIENT_SECRET"]
    if isinstance(secret, str) and secret and secret != secret.strip():
        yield Problem(
            "E012",
            "CLIENT_SECRET",
            "starts or ends with white space, which Keycloak's secrets never do",
            "Copy the secret again from Keycloak (Clients > Credentials), without a newline.",
        )


@rule
def _lock_covers_one_request(raw: Mapping[str, Any]) -> Iterator[Problem]:
    lock, timeout = raw["LOCK_TIMEOUT"], raw["TIMEOUT"]
    if not _is_number(lock, minimum=0, inclusive=False) or any(_invalid_numbers(raw)):
        return
    worst = one_request_seconds(_timeout(timeout))
    if lock < worst:
        yield Problem(
            "W005",
            "LOCK_TIMEOUT",
            f"is {lock!r} s, shorter than one token request's worst case ({worst:g} s: "
            "TIMEOUT's connect + read): with a slow Keycloak, other workers take the lock "
            "and fetch too",
            f"Remove LOCK_TIMEOUT (default: {worst:g} + {LOCK_MARGIN:g} s), or lower TIMEOUT.",
        )


@rule
def _long_assertions(raw: Mapping[str, Any]) -> Iterator[Problem]:
    lifetime = raw["ASSERTION_LIFETIME"]
    if _is_number(lifetime, minimum=ASSERTION_LIFETIME_WARNING, inclusive=False):
        yield Problem(
            "W006",
            "ASSERTION_LIFETIME",
            f"is {lifetime!r} s: a captured assertion stays redeemable that long, and "
            "Keycloak may refuse it as too old",
            f"Keep it at {ASSERTION_LIFETIME_WARNING} s or less (the default is 60).",
        )


# --- client authentication material: secrets and keys ----------------------------------------

KEY_SETTINGS = {"PRIVATE_KEY": "PRIVATE_KEY_FILE", "NEXT_PRIVATE_KEY": "NEXT_PRIVATE_KEY_FILE"}
PEM_FILE_LIMIT = 64 * 1024  # bytes; a larger "key file" is a wrong path (or /dev/zero)
KEY_HINT = (
    "Create a key with 'manage.py keycloak_keys generate --algorithm ALG > key.pem' "
    "(readable by the app's user only) and set PRIVATE_KEY_FILE to its path, or PRIVATE_KEY "
    "to the PEM text; ALGORITHM must suit the key (RS*/PS*: RSA, ES256/384/512: P-256/384/521, "
    "EdDSA: Ed25519)."
)


@sensitive_variables()
def read_pem(raw: Mapping[str, Any], key: str) -> str | None:
    """The PEM text of key setting ``key`` (``PRIVATE_KEY`` or ``NEXT_PRIVATE_KEY``): the text
    itself or its ``*_FILE``'s content; ``None`` when neither is set. Raises ``KeyProblem``."""
    path = raw[KEY_SETTINGS[key]]
    if not path:
        return Masked(raw[key]) if raw[key] else None
    try:
        with open(path, "rb") as file:
            data = file.read(PEM_FILE_LIMIT + 1)
    except OSError as exc:
        raise KeyProblem(f"{os.fspath(path)!r} cannot be read ({exc.strerror})") from None
    if len(data) > PEM_FILE_LIMIT:
        raise KeyProblem(f"{os.fspath(path)!r} is larger than {PEM_FILE_LIMIT} bytes") from None
    try:
        return Masked(data.decode("ascii"))  # a str whose repr (in any frame's locals) is stars
    except UnicodeDecodeError:
        raise KeyProblem(f"{os.fspath(path)!r} is not a PEM text file") from None


@rule
@sensitive_variables()
def _keys(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if not uses_keys(raw):
        return
    if not cryptography_installed():
        text = "is private_key_jwt, which needs the cryptography package"
        yield Problem("E019", "AUTH_METHOD", text, f"Install it: {INSTALL_HINT}.")
        return
    loaded = {}
    for key, file_key in KEY_SETTINGS.items():
        name = file_key if raw[file_key] else key
        if raw[key] and raw[file_key]:
            text = f"and {file_key} are both set: which one signs would be a guess"
            yield Problem("E021", key, text, f"Keep one of {key} and {file_key}.")
            continue
        if any(problem.key in (key, file_key) for problem in _strings(raw)):
            continue  # not text or a path: E011 says so
        try:
            pem = read_pem(raw, key)
            if pem is None:
                if key == "PRIVATE_KEY":
                    text = "is missing: private_key_jwt needs PRIVATE_KEY or PRIVATE_KEY_FILE"
                    yield Problem("E015", key, text, KEY_HINT)
                continue
            loaded[key] = private_key = load_private_key(pem)
        except KeyProblem as exc:
            yield Problem("E016", name, str(exc), KEY_HINT)
            continue
        algorithm = algorithm_of(raw)
        mismatch = key_mismatch(private_key, algorithm) if algorithm in KEY_ALGORITHMS else None
        if mismatch:
            yield Problem("E017", name, mismatch, KEY_HINT)
        elif weakness := key_weakness(private_key):
            yield Problem("E018", name, weakness, KEY_HINT)
    current, upcoming = loaded.get("PRIVATE_KEY"), loaded.get("NEXT_PRIVATE_KEY")
    if current is not None and upcoming is not None and same_key(current, upcoming):
        yield Problem(
            "W010",
            "NEXT_PRIVATE_KEY_FILE" if raw["NEXT_PRIVATE_KEY_FILE"] else "NEXT_PRIVATE_KEY",
            "is the same key as PRIVATE_KEY: nothing is being rotated",
            "Set NEXT_PRIVATE_KEY to a new key (keycloak_keys generate), or remove it.",
        )


@rule
def _fallback_secrets(raw: Mapping[str, Any]) -> Iterator[Problem]:
    fallbacks = raw["FALLBACK_SECRETS"]
    if fallbacks is None or fallbacks == ():
        return
    if not isinstance(fallbacks, (list, tuple)) or not all(
        isinstance(secret, str) and secret and secret == secret.strip() for secret in fallbacks
    ):
        yield Problem(
            "E020",
            "FALLBACK_SECRETS",
            "must be a list of client secrets (non-empty strings without surrounding spaces)",
            "e.g. [env('KEYCLOAK_OLD_CLIENT_SECRET')] while a secret rotation is under way; "
            "remove it afterwards.",
        )


@rule
def _unused_credentials(raw: Mapping[str, Any]) -> Iterator[Problem]:
    method = raw["AUTH_METHOD"]
    if method == KEY_METHOD:
        unused = [key for key in ("CLIENT_SECRET", "FALLBACK_SECRETS") if raw[key]]
        check_id = "W011"
    elif method == SECRET_METHOD:
        unused = [key for key in (*KEY_SETTINGS, *FILE_KEYS, "KEY_ID") if raw[key]]
        check_id = "W012"
    else:
        return
    for key in unused:
        yield Problem(
            check_id,
            key,
            f"is set but not used: AUTH_METHOD is {method!r}",
            "Remove it, or set AUTH_METHOD to the method it belongs to.",
        )


# --- configs built from valid settings --------------------------------------------------------

_configs: dict[str, ClientConfig] = {}


def get_client_config(name: str = DEFAULT_CLIENT) -> ClientConfig:
    """The validated config of client ``name``; raises ``ConfigurationError`` when unusable."""
    config = _configs.get(name)
    if config is None:
        config = _configs[name] = build_client_config(name)
    return config


@sensitive_variables("raw")
def build_client_config(name: str) -> ClientConfig:
    errors = [problem for problem in client_problems(name) if problem.is_error]
    if errors:
        raise ConfigurationError(f"Keycloak client {name!r} cannot be used: {summary(errors)}")
    raw = raw_client_settings(name)
    server_url = str(raw["SERVER_URL"]).rstrip("/")
    realm = str(raw["REALM"])
    issuer = realm_issuer(server_url, realm)
    keys = uses_keys(raw)
    return ClientConfig(
        name=name,
        server_url=server_url,
        realm=realm,
        client_id=str(raw["CLIENT_ID"]),
        auth_method=raw["AUTH_METHOD"],
        client_secret=Masked("" if keys else raw["CLIENT_SECRET"]),
        fallback_secrets=() if keys else tuple(map(Masked, raw["FALLBACK_SECRETS"] or ())),
        private_key=read_pem(raw, "PRIVATE_KEY") if keys else None,
        next_private_key=read_pem(raw, "NEXT_PRIVATE_KEY") if keys else None,
        key_id=raw["KEY_ID"] or None,
        algorithm=algorithm_of(raw),
        assertion_typ=raw["ASSERTION_TYP"],
        audience=raw["AUDIENCE"] or issuer,
        token_endpoint=raw["TOKEN_ENDPOINT"] or f"{issuer}/protocol/openid-connect/token",
        scope=raw["SCOPE"] or None,
        assertion_lifetime=int(raw["ASSERTION_LIFETIME"]),
        cache_alias=raw["CACHE_ALIAS"],
        refresh_margin=float(raw["REFRESH_MARGIN"]),
        timeout=_timeout(raw["TIMEOUT"]),
        verify=raw["VERIFY"],
        retries=int(raw["RETRIES"]),
        background_refresh=bool(raw["BACKGROUND_REFRESH"]),
        lock_timeout=_lock_timeout(raw["LOCK_TIMEOUT"], _timeout(raw["TIMEOUT"])),
    )


def summary(problems: list[Problem]) -> str:
    """One line: keys that share a problem are named together ("REALM, CLIENT_ID: ...")."""
    keys_by_text: dict[str, list[str]] = {}
    for problem in problems:
        keys_by_text.setdefault(problem.text, []).append(problem.key or SETTING_NAME)
    parts = [f"{', '.join(keys)} {text}" for text, keys in keys_by_text.items()]
    return "; ".join(parts) + ". Run 'manage.py check' for hints."


def _lock_timeout(value: Any, timeout: Timeout) -> float:
    return one_request_seconds(timeout) + LOCK_MARGIN if value is None else float(value)


def _timeout(value: Any) -> Timeout:
    """``None`` means the default (never "no timeout"); a [connect, read] list becomes the
    tuple requests expects."""
    if value is None:
        return DEFAULT_TIMEOUT
    return (float(value[0]), float(value[1])) if isinstance(value, (list, tuple)) else value


@receiver(setting_changed)
def _forget_configs(*, setting: str, **kwargs: Any) -> None:
    if setting in CLIENT_SETTINGS:
        _configs.clear()
