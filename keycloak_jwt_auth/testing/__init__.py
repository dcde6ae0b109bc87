"""``FakeKeycloak``: a Keycloak to test against without running one.

A real HTTP server on 127.0.0.1 in a thread, so ``requests``, ``httpx`` (sync and async) and
subprocesses reach it like the real thing. Its token endpoint checks client assertions as
Keycloak 26 does and refuses them with Keycloak's own ``error`` and ``error_description``:

- ``iss`` = ``sub`` = a known client (else 401); a form ``client_id`` must name the same client;
- ``alg`` allowed for the client (its signature algorithm, or any HMAC / asymmetric one);
- the signature: HMAC with the client's secret, or one of its public keys or its JWKS URL;
- one ``aud`` from the accepted set (issuer, token, PAR and CIBA endpoint URLs);
- ``exp`` required and not past (nor ``nbf`` ahead); ``iat`` at most 60 s old and at most 15 s
  ahead; ``jti`` required and single use.

It also serves the realm's discovery document and a small Admin API (the reads and writes of
``KeycloakAdmin``) over an in-memory realm, answering 400/401/403/404/409 with Keycloak 26.7's
bodies (writes need ``manage-users``; a password is kept only as a salted hash), and it can fail
on purpose (``fail("down" | "slow" | "5xx" | "html")``).

    with FakeKeycloak() as kc:
        kc.add_user("ada", email="ada@example.com")
        with override_settings(KEYCLOAK_JWT_AUTH=kc.settings()):
            ...
        assert kc.token_requests == 1

With pytest, the ``fake_keycloak`` fixture (``keycloak_jwt_auth.pytest_plugin``) does the same,
keeping the project's own settings; ``shared_fake_keycloak`` reuses one server, ``reset()`` for
each test. ``FakeKeycloak(port=...)`` listens where it is told; ``python -m
keycloak_jwt_auth.testing --port N`` serves one for local development. Each fake's clients get
their own random secrets, and the token cache key covers the credential: a later fake on a
reused port never sees an earlier one's token.
Private-key clients (``private_key_jwt``) need ``cryptography`` to verify their signatures.
Federated clients (``federated_jwt``) authenticate with another issuer's JWT: see
``add_identity_provider``, ``add_federated_client`` and ``issuer`` (an OIDC test issuer and a
kubelet-like token file).

Its parts: ``server`` (``FakeKeycloak``, the HTTP shell: routing, faults, settings, counters),
``token_endpoint`` (the assertion checks and the tokens), ``admin_api`` (the routes and
Keycloak's role rules; ``admin_support`` the client-role, organization, session and e-mail
routes; ``federated`` federated client authentication), ``realm`` (the in-memory realm they
read and write), ``wire`` (the ``Answer`` they
give the shell); for tests, ``overlay`` (the project's settings pointed at a fake) and
``offline`` (the guard against real token requests). The fake's own parts state what
Keycloak does and import nothing of the client; only ``offline`` wraps its token request.
"""

from __future__ import annotations

from keycloak_jwt_auth.testing.admin_api import (
    ADMIN_ROUTES,
    EMAIL,
    IMPLIED_ROLES,
    MANAGE_USERS,
    READ_ROLE_BY_RESOURCE,
    WRITABLE_USER_KEYS,
    Handler,
    Route,
)
from keycloak_jwt_auth.testing.realm import (
    BRIEF_USER_KEYS,
    PASSWORD_HASH_ROUNDS,
    READ_ROLES,
    UPDATE_PASSWORD,
    FakeClient,
    StoredPassword,
)
from keycloak_jwt_auth.testing.server import FAULTS, FakeKeycloak
from keycloak_jwt_auth.testing.token_endpoint import (
    ASSERTION_TYPE,
    FUTURE_LEEWAY,
    HMAC_ALGORITHMS,
    KEY_ALGORITHMS,
    MAX_ASSERTION_AGE,
    UNKNOWN_CLIENT,
    Refused,
)
from keycloak_jwt_auth.testing.wire import NO_CONTENT, AdminRequest, Answer, Answered

__all__ = [
    "ADMIN_ROUTES",
    "ASSERTION_TYPE",
    "BRIEF_USER_KEYS",
    "EMAIL",
    "FAULTS",
    "FUTURE_LEEWAY",
    "HMAC_ALGORITHMS",
    "IMPLIED_ROLES",
    "KEY_ALGORITHMS",
    "MANAGE_USERS",
    "MAX_ASSERTION_AGE",
    "NO_CONTENT",
    "PASSWORD_HASH_ROUNDS",
    "READ_ROLES",
    "READ_ROLE_BY_RESOURCE",
    "UNKNOWN_CLIENT",
    "UPDATE_PASSWORD",
    "WRITABLE_USER_KEYS",
    "AdminRequest",
    "Answer",
    "Answered",
    "FakeClient",
    "FakeKeycloak",
    "Handler",
    "Refused",
    "Route",
    "StoredPassword",
]
