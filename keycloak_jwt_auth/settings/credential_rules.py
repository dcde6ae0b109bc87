"""The rules on how a client proves itself: method, algorithm, secrets and private keys."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from typing import Any

from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.keys import (
    INSTALL_HINT,
    KEY_ALGORITHMS,
    KeyProblem,
    cryptography_installed,
    key_family,
    key_mismatch,
    key_weakness,
    load_private_key,
    same_key,
)

from .defaults import (
    ALGORITHMS,
    AUTH_METHODS,
    DEFAULT_ALGORITHM,
    DPOP_DEFAULT_ALGORITHM,
    FEDERATED_METHOD,
    FILE_KEYS,
    KEY_METHOD,
    KEY_SETTINGS,
    PEM_SETTINGS,
    SECRET_BYTES,
    SECRET_METHOD,
)
from .keyfiles import ClientSettings
from .problems import (
    BAD_FALLBACK_SECRETS,
    DPOP_NO_CRYPTOGRAPHY,
    DPOP_SAME_KEY,
    DPOP_UNUSABLE_KEY,
    DPOP_UNUSED_ALGORITHM,
    DPOP_WRONG_ALGORITHM,
    KEY_AND_FILE,
    NO_CRYPTOGRAPHY,
    NO_PRIVATE_KEY,
    SAME_NEXT_KEY,
    SHORT_SECRET,
    SPACED_SECRET,
    UNKNOWN_AUTH_METHOD,
    UNUSABLE_KEY,
    UNUSED_KEY,
    UNUSED_SECRET,
    WEAK_KEY,
    WRONG_ALGORITHM,
    WRONG_KEY_TYPE,
    Problem,
)

KEY_HINT = (
    "Create a key with 'manage.py keycloak_keys generate --algorithm ALG > key.pem' "
    "(readable by the app's user only) and set PRIVATE_KEY_FILE to its path, or PRIVATE_KEY "
    "to the PEM text; ALGORITHM must suit the key (RS*/PS*: RSA, ES256/384/512: P-256/384/521, "
    "EdDSA: Ed25519)."
)
DPOP_KEY_HINT = (
    "Create a key with 'manage.py keycloak_keys generate --dpop > dpop.pem' "
    "(readable by the app's user only; a key of its own, not the client-authentication key) "
    "and set DPOP_KEY_FILE to its path, or DPOP_KEY to the PEM text."
)


def algorithm_of(raw: Mapping[str, Any]) -> Any:
    """``ALGORITHM``, or the default of the client's ``AUTH_METHOD``."""
    method = raw["AUTH_METHOD"]
    return raw["ALGORITHM"] or DEFAULT_ALGORITHM.get(method if isinstance(method, str) else "")


def uses_keys(raw: Mapping[str, Any]) -> bool:
    return bool(raw["AUTH_METHOD"] == KEY_METHOD)


def is_text(raw: Mapping[str, Any], key: str) -> bool:
    """Unset, one string of UTF-8 text, or (for a ``*_FILE``) a path: else an E011."""
    value = raw[key]
    path_like = key in PEM_SETTINGS.values() and isinstance(value, os.PathLike)
    return not value or (isinstance(value, str) and encodable(value)) or path_like


def encodable(text: str) -> bool:
    """False for a string that UTF-8 cannot encode (a lone surrogate, from a bad environment)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def unknown_auth_method(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["AUTH_METHOD"] not in AUTH_METHODS:
        yield Problem(
            UNKNOWN_AUTH_METHOD,
            "AUTH_METHOD",
            f"is {raw['AUTH_METHOD']!r}, not one of {', '.join(AUTH_METHODS)}",
            "Use 'client_secret_jwt' (Keycloak: 'Signed JWT with Client Secret'), "
            "'private_key_jwt' (Keycloak: 'Signed JWT') or 'federated_jwt' (Keycloak: 'Signed "
            "JWT - Federated').",
        )


def wrong_algorithm(raw: Mapping[str, Any]) -> Iterator[Problem]:
    if raw["AUTH_METHOD"] not in AUTH_METHODS or raw["AUTH_METHOD"] == FEDERATED_METHOD:
        return  # a federated client's JWT is signed by its issuer, with the issuer's algorithm
    method = raw["AUTH_METHOD"]
    allowed = KEY_ALGORITHMS if uses_keys(raw) else ALGORITHMS
    if algorithm_of(raw) not in allowed:
        yield Problem(
            WRONG_ALGORITHM,
            "ALGORITHM",
            f"is {raw['ALGORITHM']!r}, which Keycloak's {method} does not use "
            f"(one of {', '.join(allowed)})",
            f"Use one of {', '.join(allowed)}, the same as the client's 'Signature "
            "algorithm' in Keycloak (Clients > Credentials).",
        )


def short_secrets(raw: Mapping[str, Any]) -> Iterator[Problem]:
    algorithm = algorithm_of(raw)
    needed = SECRET_BYTES.get(algorithm) if isinstance(algorithm, str) else None
    fallbacks = raw["FALLBACK_SECRETS"]
    fallbacks = fallbacks if isinstance(fallbacks, (list, tuple)) else ()
    secrets = {"CLIENT_SECRET": raw["CLIENT_SECRET"]}
    secrets.update((f"FALLBACK_SECRETS[{i}]", secret) for i, secret in enumerate(fallbacks))
    for key, secret in secrets.items():
        text = secret if isinstance(secret, str) and encodable(secret) else None
        if text and needed and len(text.encode()) < needed:
            yield Problem(
                SHORT_SECRET,
                key,
                f"is shorter than {needed} bytes, the minimum key size for {algorithm_of(raw)} "
                "(RFC 7518 section 3.2)",
                "Regenerate the client secret in Keycloak (Credentials > Regenerate); its "
                "generated secrets are long enough.",
            )


def padded_secret(raw: Mapping[str, Any]) -> Iterator[Problem]:
    secret = raw["CLIENT_SECRET"]
    if isinstance(secret, str) and secret and secret != secret.strip() and encodable(secret):
        yield Problem(
            SPACED_SECRET,
            "CLIENT_SECRET",
            "starts or ends with white space, which Keycloak's secrets never do",
            "Copy the secret again from Keycloak (Clients > Credentials), without a newline.",
        )


@sensitive_variables()
def key_problems(raw: ClientSettings) -> Iterator[Problem]:
    if not uses_keys(raw):
        return
    if not cryptography_installed():
        text = "is private_key_jwt, which needs the cryptography package"
        yield Problem(NO_CRYPTOGRAPHY, "AUTH_METHOD", text, f"Install it: {INSTALL_HINT}.")
        return
    loaded = {}
    for key, file_key in KEY_SETTINGS.items():
        name = file_key if raw[file_key] else key
        if raw[key] and raw[file_key]:
            text = f"and {file_key} are both set: which one signs would be a guess"
            yield Problem(KEY_AND_FILE, key, text, f"Keep one of {key} and {file_key}.")
            continue
        if not (is_text(raw, key) and is_text(raw, file_key)):
            continue  # not text or a path: E011 says so
        try:
            pem = raw.pem(key)
            if pem is None:
                if key == "PRIVATE_KEY":
                    text = "is missing: private_key_jwt needs PRIVATE_KEY or PRIVATE_KEY_FILE"
                    yield Problem(NO_PRIVATE_KEY, key, text, KEY_HINT)
                continue
            loaded[key] = private_key = load_private_key(pem)
        except KeyProblem as exc:
            yield Problem(UNUSABLE_KEY, name, str(exc), KEY_HINT)
            continue
        algorithm = algorithm_of(raw)
        mismatch = key_mismatch(private_key, algorithm) if algorithm in KEY_ALGORITHMS else None
        if mismatch:
            yield Problem(WRONG_KEY_TYPE, name, mismatch, KEY_HINT)
        elif weakness := key_weakness(private_key):
            yield Problem(WEAK_KEY, name, weakness, KEY_HINT)
    current, upcoming = loaded.get("PRIVATE_KEY"), loaded.get("NEXT_PRIVATE_KEY")
    if current is not None and upcoming is not None and same_key(current, upcoming):
        yield Problem(
            SAME_NEXT_KEY,
            "NEXT_PRIVATE_KEY_FILE" if raw["NEXT_PRIVATE_KEY_FILE"] else "NEXT_PRIVATE_KEY",
            "is the same key as PRIVATE_KEY: nothing is being rotated",
            "Set NEXT_PRIVATE_KEY to a new key (keycloak_keys generate), or remove it.",
        )


def bad_fallback_secrets(raw: Mapping[str, Any]) -> Iterator[Problem]:
    fallbacks = raw["FALLBACK_SECRETS"]
    if fallbacks is None or fallbacks == ():
        return
    if not isinstance(fallbacks, (list, tuple)) or not all(
        isinstance(secret, str) and secret and secret == secret.strip() for secret in fallbacks
    ):
        yield Problem(
            BAD_FALLBACK_SECRETS,
            "FALLBACK_SECRETS",
            "must be a list of client secrets (non-empty strings without surrounding spaces)",
            "e.g. [env('KEYCLOAK_OLD_CLIENT_SECRET')] while a secret rotation is under way; "
            "remove it afterwards.",
        )


def unused_credentials(raw: Mapping[str, Any]) -> Iterator[Problem]:
    method = raw["AUTH_METHOD"]
    if method == KEY_METHOD:
        unused = [key for key in ("CLIENT_SECRET", "FALLBACK_SECRETS") if raw[key]]
        check = UNUSED_SECRET
    elif method == SECRET_METHOD:
        unused = [key for key in (*KEY_SETTINGS, *FILE_KEYS, "KEY_ID") if raw[key]]
        check = UNUSED_KEY
    else:
        return
    for key in unused:
        yield Problem(
            check,
            key,
            f"is set but not used: AUTH_METHOD is {method!r}",
            "Remove it, or set AUTH_METHOD to the method it belongs to.",
        )


@sensitive_variables()
def dpop_key(raw: ClientSettings) -> Any:
    """The loaded ``DPOP_KEY``, or None when unset; raises ``KeyProblem``."""
    pem = raw.pem("DPOP_KEY")
    return None if pem is None else load_private_key(pem)


@sensitive_variables()
def dpop_algorithm_of(raw: ClientSettings) -> str | None:
    """``DPOP_ALGORITHM``, or the one the key's family signs with; None without a key."""
    key = dpop_key(raw)
    if key is None:
        return None
    return str(raw["DPOP_ALGORITHM"] or DPOP_DEFAULT_ALGORITHM[key_family(key)])


@sensitive_variables()
def dpop_problems(raw: ClientSettings) -> Iterator[Problem]:
    """A DPoP key that cannot sign proofs (or is the client-authentication key)."""
    key_set = raw["DPOP_KEY"] or raw["DPOP_KEY_FILE"]
    name = "DPOP_KEY_FILE" if raw["DPOP_KEY_FILE"] else "DPOP_KEY"
    if not key_set:
        if raw["DPOP_ALGORITHM"]:
            text = "is set but not used: DPoP needs DPOP_KEY or DPOP_KEY_FILE"
            yield Problem(DPOP_UNUSED_ALGORITHM, "DPOP_ALGORITHM", text, DPOP_KEY_HINT)
        return
    if not (is_text(raw, "DPOP_KEY") and is_text(raw, "DPOP_KEY_FILE")):
        return  # E011 says so
    if raw["DPOP_KEY"] and raw["DPOP_KEY_FILE"]:
        text = "and DPOP_KEY_FILE are both set: which one signs would be a guess"
        yield Problem(DPOP_UNUSABLE_KEY, "DPOP_KEY", text, "Keep one of them.")
        return
    if not cryptography_installed():
        text = "needs the cryptography package to sign DPoP proofs"
        yield Problem(DPOP_NO_CRYPTOGRAPHY, name, text, f"Install it: {INSTALL_HINT}.")
        return
    try:
        key = dpop_key(raw)
    except KeyProblem as exc:
        yield Problem(DPOP_UNUSABLE_KEY, name, str(exc), DPOP_KEY_HINT)
        return
    algorithm = dpop_algorithm_of(raw)
    if algorithm not in KEY_ALGORITHMS:
        text = f"is {algorithm!r}, not an asymmetric JWS algorithm ({', '.join(KEY_ALGORITHMS)})"
        yield Problem(DPOP_WRONG_ALGORITHM, "DPOP_ALGORITHM", text, DPOP_KEY_HINT)
    elif mismatch := key_mismatch(key, algorithm):
        yield Problem(DPOP_WRONG_ALGORITHM, name, mismatch, DPOP_KEY_HINT)
    elif weakness := key_weakness(key):
        yield Problem(DPOP_UNUSABLE_KEY, name, weakness, DPOP_KEY_HINT)
    yield from _dpop_same_key(raw, key, name)


@sensitive_variables()
def _dpop_same_key(raw: ClientSettings, key: Any, name: str) -> Iterator[Problem]:
    if not uses_keys(raw):
        return
    try:
        client_key = raw.pem("PRIVATE_KEY")
        same = client_key is not None and same_key(key, load_private_key(client_key))
    except KeyProblem:
        return  # key_problems reports it
    if same:
        yield Problem(
            DPOP_SAME_KEY,
            name,
            "is the same key as PRIVATE_KEY: one stolen key would both authenticate the "
            "client and use its bound tokens",
            DPOP_KEY_HINT,
        )
