"""Keys made once per test run (RSA generation is slow), one per algorithm family."""

from __future__ import annotations

import functools

from keycloak_jwt_auth.keys import generate_private_key


def pem(algorithm: str, number: int = 0) -> str:
    """A private key for ``algorithm``; ``number`` tells several apart."""
    return _pem(algorithm, number)  # one cache key however the caller spells the arguments


@functools.cache
def _pem(algorithm: str, number: int) -> str:
    return generate_private_key(algorithm)


def key_settings(algorithm: str = "RS256", number: int = 0, **extra: object) -> dict[str, object]:
    """A private_key_jwt client's own keys, over the unit tests' settings."""
    return {
        "AUTH_METHOD": "private_key_jwt",
        "CLIENT_SECRET": None,
        "PRIVATE_KEY": pem(algorithm, number),
        "ALGORITHM": algorithm,
        **extra,
    }
