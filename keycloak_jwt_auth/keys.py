"""Private keys for ``private_key_jwt``: reading them, judging them, and their public JWKs.

``cryptography`` is an optional extra (``keycloak-jwt-auth[keys]``): it is imported when a key is
first used, so the package imports without it. A public JWK is built from the key's public
numbers only, so no private member can ever reach the JWKS, whatever the key type.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

    SigningKey = RSAPrivateKey | EllipticCurvePrivateKey | Ed25519PrivateKey

KEY_ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MIN_RSA_BITS = 2048  # NIST SP 800-131A; Keycloak's own generated keys are 2048 bits or more
GENERATED_RSA_BITS = 3072  # what `keycloak_keys generate` makes: good past 2030
EC_CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}  # RFC 7518 section 3.4
CURVE_NAMES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
# RFC 7638 section 3.2: the members a thumbprint is computed over, per key type.
THUMBPRINT_MEMBERS = {
    "RSA": ("e", "kty", "n"),
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
}
INSTALL_HINT = "pip install 'keycloak-jwt-auth[keys]' (it adds cryptography)"


class KeyProblem(ValueError):
    """A key that cannot be used; the message reads after the setting's name and never quotes
    the key."""


def cryptography_installed() -> bool:
    try:
        import cryptography  # noqa: F401
    except ImportError:
        return False
    return True


def load_private_key(pem: str) -> SigningKey:
    """The private key in ``pem`` (PKCS#8 or the traditional RSA/EC formats, unencrypted)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(pem.encode(), password=None)
    except TypeError:  # what cryptography raises when a passphrase would be needed
        raise KeyProblem(
            "is encrypted with a passphrase, which the app cannot read without a prompt"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise KeyProblem("is not a PEM private key ('-----BEGIN PRIVATE KEY-----' ...)") from None
    usable = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)
    if not isinstance(key, usable):
        raise KeyProblem(f"is a {key_family(key)} key: Keycloak verifies RSA, EC and Ed25519 keys")
    return key


def key_family(key: Any) -> str:
    """What the key is, in the words of the algorithms that use it: 'RSA', 'P-256', 'Ed25519'."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    if isinstance(key, rsa.RSAPrivateKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return CURVE_NAMES.get(key.curve.name, key.curve.name)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "Ed25519"
    return type(key).__name__.removeprefix("_").replace("PrivateKey", "")


def family_for(algorithm: str) -> str:
    """The key family ``algorithm`` signs with."""
    if algorithm.startswith(("RS", "PS")):
        return "RSA"
    return EC_CURVES.get(algorithm, "Ed25519")


def key_mismatch(key: Any, algorithm: str) -> str | None:
    """Why ``key`` cannot sign ``algorithm`` assertions, or None when it can."""
    family, needed = key_family(key), family_for(algorithm)
    if family != needed:
        return f"is a {family} key, but ALGORITHM {algorithm} needs a {needed} key"
    return None


def key_weakness(key: Any) -> str | None:
    """Why ``key`` is too weak to use, or None."""
    if key_family(key) == "RSA" and key.key_size < MIN_RSA_BITS:
        return f"is a {key.key_size}-bit RSA key, below the {MIN_RSA_BITS} bits needed"
    return None


def same_key(one: Any, other: Any) -> bool:
    return bool(_public_members(one) == _public_members(other))


def public_jwk(key: Any, algorithm: str, kid: str | None = None) -> dict[str, str]:
    """The public JWK of private ``key``: public members, ``kid`` (default: the RFC 7638
    thumbprint), ``alg`` and ``use``."""
    jwk = _public_members(key)
    return {**jwk, "kid": kid or thumbprint(jwk), "alg": algorithm, "use": "sig"}


def _public_members(key: Any) -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization

    family = key_family(key)
    public = key.public_key()
    if family == "RSA":
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": _b64_int(numbers.n), "e": _b64_int(numbers.e)}
    if family == "Ed25519":
        raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}
    numbers = public.public_numbers()
    size = (key.curve.key_size + 7) // 8
    return {
        "kty": "EC",
        "crv": family,
        "x": _b64(numbers.x.to_bytes(size, "big")),
        "y": _b64(numbers.y.to_bytes(size, "big")),
    }


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638: SHA-256 of the required public members, sorted, no white space."""
    members = {name: jwk[name] for name in THUMBPRINT_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


def generate_private_key(algorithm: str) -> str:
    """A new private key for ``algorithm``, as unencrypted PKCS#8 PEM."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    family = family_for(algorithm)
    key: SigningKey
    if family == "RSA":
        key = rsa.generate_private_key(public_exponent=65537, key_size=GENERATED_RSA_BITS)
    elif family == "Ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        curves = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
        key = ec.generate_private_key(curves[family])
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_int(value: int) -> str:
    return _b64(value.to_bytes((value.bit_length() + 7) // 8 or 1, "big"))
