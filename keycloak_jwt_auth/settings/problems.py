"""Every system check of ``keycloak_jwt_auth`` in one table, and ``Problem``, one finding of one.

IDs are never reused. The rules and the checks name the entries below, never an ID; the system
check reference is generated from ``CHECKS``.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

Level = Literal["error", "warning"]


@dataclasses.dataclass(frozen=True)
class Check:
    """One system check: ``error`` ones stop a client from working, ``warning`` ones do not;
    ``deploy`` ones are reported by ``manage.py check --deploy`` only."""

    id: str
    level: Level
    summary: str
    deploy: bool = False


CHECKS: dict[str, Check] = {}


def _check(check_id: str, level: Level, summary: str, *, deploy: bool = False) -> Check:
    assert check_id not in CHECKS, f"{check_id} is used twice"
    CHECKS[check_id] = Check(check_id, level, summary, deploy)
    return CHECKS[check_id]


def _error(check_id: str, summary: str) -> Check:
    return _check(check_id, "error", summary)


def _warning(check_id: str, summary: str, *, deploy: bool = False) -> Check:
    return _check(check_id, "warning", summary, deploy=deploy)


NOT_A_DICT = _error("E001", "`KEYCLOAK_JWT_AUTH` (or its `CLIENTS`) is not a dict")
NO_SERVER_URL = _error("E002", "`SERVER_URL` is missing")
NO_REALM = _error("E003", "`REALM` is missing")
NO_CLIENT_ID = _error("E004", "`CLIENT_ID` is missing")
NO_CLIENT_SECRET = _error("E005", "`CLIENT_SECRET` is missing (with `client_secret_jwt`)")
WRONG_ALGORITHM = _error("E006", "`ALGORITHM` is not one that `AUTH_METHOD` uses")
BAD_URL = _error("E007", "`SERVER_URL` or `TOKEN_ENDPOINT` is not a plain http(s) URL")
UNKNOWN_CACHE = _error("E008", "`CACHE_ALIAS` is not in `CACHES`")
BAD_NUMBER = _error("E009", "a number that cannot work (`TIMEOUT`, `RETRIES`, ...)")
BAD_VERIFY = _error("E010", "`VERIFY` is not `True`, `False` or an existing CA bundle")
NOT_ONE_STRING = _error("E011", "a text setting is not one string (a `*_FILE` may be a Path)")
SPACED_SECRET = _error("E012", "`CLIENT_SECRET` starts or ends with white space")
BAD_REALM = _error("E013", "`REALM` is `.` or `..`")
UNKNOWN_AUTH_METHOD = _error("E014", "`AUTH_METHOD` is not a method Keycloak offers")
NO_PRIVATE_KEY = _error("E015", "`private_key_jwt` without `PRIVATE_KEY(_FILE)`")
UNUSABLE_KEY = _error("E016", "a key that cannot be read, loaded or verified by Keycloak")
WRONG_KEY_TYPE = _error("E017", "the key does not suit `ALGORITHM`")
WEAK_KEY = _error("E018", "an RSA key under 2048 bits")
NO_CRYPTOGRAPHY = _error("E019", "`private_key_jwt` without the `cryptography` package")
BAD_FALLBACK_SECRETS = _error("E020", "`FALLBACK_SECRETS` is not a list of secrets")
KEY_AND_FILE = _error("E021", "both `PRIVATE_KEY` and `PRIVATE_KEY_FILE` (or `NEXT_...`)")
UNCHECKABLE = _error("E022", "a setting whose value cannot be checked (its type or shape)")
DUPLICATE_KID = _error("E023", "two keys under one `kid` in what one JWKS URL serves")
# DPoP's checks: a block of their own, apart from the numbers other work may take next.
DPOP_UNUSABLE_KEY = _error("E030", "`DPOP_KEY(_FILE)` unreadable, not an asymmetric key, or both")
DPOP_WRONG_ALGORITHM = _error("E031", "`DPOP_ALGORITHM` is not one the DPoP key signs with")
DPOP_NO_CRYPTOGRAPHY = _error("E032", "`DPOP_KEY` without the `cryptography` package")
# Federated client authentication (federated_jwt): a block of their own.
NO_ASSERTION_SOURCE = _error("E040", "`federated_jwt` without one `ASSERTION_FILE`/`_PROVIDER`")
UNREADABLE_ASSERTION = _error("E041", "`ASSERTION_FILE` missing or unreadable")
NOT_A_JWT = _error("E042", "`ASSERTION_FILE` does not hold a JWT")
WRONG_ASSERTION_AUDIENCE = _error("E043", "the assertion's `aud` is not exactly the realm issuer")
EXPIRED_ASSERTION = _error("E044", "the assertion in `ASSERTION_FILE` has expired")
BAD_ASSERTION_PROVIDER = _error("E045", "`ASSERTION_PROVIDER` not importable or not callable")
SHORT_SECRET = _warning("W001", "a secret shorter than the algorithm's key size")
LOCMEM_CACHE = _warning("W002", "tokens in a per-process `LocMemCache`")
DUMMY_CACHE = _warning("W003", "tokens in a `DummyCache`, which stores nothing")
UNKNOWN_KEY = _warning("W004", "an unknown key (a typo?)")
SHORT_LOCK = _warning("W005", "`LOCK_TIMEOUT` shorter than one token request's worst case")
LONG_ASSERTIONS = _warning("W006", "`ASSERTION_LIFETIME` above 60 s")
FILE_CACHE = _warning("W007", "tokens in a `FileBasedCache` (no atomic `add()`)")
REDIS_REPLICAS = _warning("W008", "tokens in a `RedisCache` that reads from replicas")
DATABASE_CACHE = _warning("W009", "tokens in a `DatabaseCache` (`add()` races on expired rows)")
SAME_NEXT_KEY = _warning("W010", "`NEXT_PRIVATE_KEY` is the same key as `PRIVATE_KEY`")
UNUSED_SECRET = _warning("W011", "a secret set with `private_key_jwt`: unused")
UNUSED_KEY = _warning("W012", "a key or `KEY_ID` set with `client_secret_jwt`: unused")
JWKS_OF_ALL_CLIENTS = _warning("W013", "one JWKS of every client's keys (an explicit opt-in)")
SECRET_WITH_FEDERATED = _warning("W040", "a secret or key set with `federated_jwt`: unused")
UNUSED_ASSERTION = _warning("W041", "`ASSERTION_FILE`/`_PROVIDER` set without `federated_jwt`")
DPOP_SAME_KEY = _warning("W030", "`DPOP_KEY` is the client-authentication key")
DPOP_UNUSED_ALGORITHM = _warning("W031", "`DPOP_ALGORITHM` without `DPOP_KEY`: unused")
PLAIN_HTTP = _warning("W101", "an `http://` Keycloak URL: tokens unencrypted", deploy=True)
TLS_UNVERIFIED = _warning("W102", "`VERIFY` is `False`: TLS not verified", deploy=True)
DEMO_VIEWS_OPEN = _warning("W103", "demo views open to anyone (reads only)", deploy=True)

# (id, level, summary) rows of the system check reference.
CHECKS_REFERENCE: list[tuple[str, str, str]] = [
    (check.id, check.level, check.summary) for check in CHECKS.values()
]


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a client's settings: a ``check`` found at ``key``."""

    check: Check
    key: str | None
    text: str  # reads after the key: "SERVER_URL" + " is not an http(s) URL: ..."
    hint: str

    @property
    def id(self) -> str:
        return self.check.id

    @property
    def is_error(self) -> bool:
        return self.check.level == "error"

    @property
    def deploy(self) -> bool:
        return self.check.deploy
