"""Client authentication: who signs the client assertion, and the keys it signs with."""

from keycloak_jwt_auth.client_auth.assertion import (
    ASSERTION_TYPE,
    ClientAuthentication,
    Signer,
    new_jti,
)
from keycloak_jwt_auth.client_auth.federated import FederatedJwt
from keycloak_jwt_auth.client_auth.methods import (
    ClientSecretJwt,
    KeySigner,
    PrivateKeyJwt,
    build_client_assertion,
    client_authentication,
)

__all__ = [
    "ASSERTION_TYPE",
    "ClientAuthentication",
    "ClientSecretJwt",
    "FederatedJwt",
    "KeySigner",
    "PrivateKeyJwt",
    "Signer",
    "build_client_assertion",
    "client_authentication",
    "new_jti",
]
