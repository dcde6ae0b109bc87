"""The cost of one client assertion per algorithm, next to HS256 (no network: signing only).

Each row builds ``calls`` assertions with ``build_client_assertion`` (claims, a new jti, the
signature) and reports the median; "PyJWT alone" is ``jwt.encode`` of the same claims with the
same key, the floor under our code. RSA rows name their key size (keycloak_keys generates 3072).
"""

from __future__ import annotations

import functools
import statistics
import time
from typing import Any

import jwt
from django.test import override_settings

from benchmarks.common import table
from keycloak_jwt_auth.client_auth import build_client_assertion
from keycloak_jwt_auth.clients import clients, get_client_config
from keycloak_jwt_auth.keys import KEY_ALGORITHMS, load_private_key

SECRET = "benchmark-only-secret-" + "x" * 64  # 86 bytes: long enough for HS512
CLAIMS = {"iss": "bench", "sub": "bench", "aud": "https://keycloak.test/realms/demo"}


def rsa_pem(bits: int) -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def contenders() -> list[tuple[str, dict[str, Any]]]:
    """(row label, client settings) for every algorithm."""
    from keycloak_jwt_auth.keys import generate_private_key

    hmac = ("HS256", "HS384", "HS512")
    rows: list[tuple[str, dict[str, Any]]] = [
        (alg, {"ALGORITHM": alg, "CLIENT_SECRET": SECRET}) for alg in hmac
    ]
    rsa_2048 = rsa_pem(2048)
    for algorithm in KEY_ALGORITHMS:
        rsa = algorithm[:2] in ("RS", "PS")
        sizes = [("2048-bit", rsa_2048), ("3072-bit", None)] if rsa else [("", None)]
        for label, pem in sizes:
            key = {
                "AUTH_METHOD": "private_key_jwt",
                "CLIENT_SECRET": None,
                "ALGORITHM": algorithm,
                "PRIVATE_KEY": pem or generate_private_key(algorithm),
            }
            rows.append((f"{algorithm} {label}".strip(), key))
    return rows


def median_us(call: Any, calls: int) -> float:
    timings = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        call()
        timings.append(time.perf_counter_ns() - started)
    return statistics.median(timings) / 1000


def signing_costs(calls: int) -> list[dict[str, Any]]:
    base = {"SERVER_URL": "https://keycloak.test", "REALM": "demo", "CLIENT_ID": "bench"}
    rows: list[dict[str, Any]] = []
    for label, client in contenders():
        with override_settings(KEYCLOAK_JWT_AUTH={**base, **client}):
            config = get_client_config()
            signer = clients["default"].authentication.candidates()[0]  # the key, parsed once
            key: Any = client["CLIENT_SECRET"] or load_private_key(str(client["PRIVATE_KEY"]))
            ours = functools.partial(build_client_assertion, config, signer)
            floor = functools.partial(jwt.encode, CLAIMS, key, algorithm=config.algorithm)
            rows.append(
                {
                    "algorithm": label,
                    "calls": calls,
                    "ours_p50_us": median_us(ours, calls),
                    "pyjwt_p50_us": median_us(floor, calls),
                }
            )
    hs256 = rows[0]["ours_p50_us"]
    for row in rows:
        row["vs_hs256"] = f"{row['ours_p50_us'] / hs256:.0f}x"
    return rows


def signing_table(rows: list[dict[str, Any]]) -> str:
    return table(
        "Client assertion signing, one assertion (median)",
        rows,
        [
            ("algorithm", "algorithm"),
            ("calls", "calls"),
            ("build_client_assertion µs", "ours_p50_us"),
            ("PyJWT alone µs", "pyjwt_p50_us"),
            ("vs HS256", "vs_hs256"),
        ],
    )
