"""The doctor's checks of a ``federated_jwt`` client: the external JWT it would send (issuer,
subject, audience, remaining life; never the JWT), and the Keycloak client that should trust it
(authenticator, identity provider alias, expected subject) when the service account may read it.
"""

from __future__ import annotations

from typing import Any

from keycloak_jwt_auth.client_auth.federated import FederatedJwt
from keycloak_jwt_auth.doctor.probe import FAIL, OK, WARN, Finding, Probe
from keycloak_jwt_auth.exceptions import AssertionUnusableError, server_text
from keycloak_jwt_auth.federation import NotAJwt, audiences, remaining_life, unverified_claims
from keycloak_jwt_auth.settings import FEDERATED_METHOD

SOURCE_HINT = "See the README, 'Running on Kubernetes without a secret'."
IDP_SCREEN = "Keycloak: Identity providers"


def check_assertion(probe: Probe) -> Finding | None:
    """What the JWT says about itself, before Keycloak is asked to accept it."""
    if probe.config.auth_method != FEDERATED_METHOD:
        return None
    signer = FederatedJwt(probe.config).signer
    try:
        claims = unverified_claims(signer.source.read())
    except AssertionUnusableError as exc:
        return Finding("assertion", FAIL, str(exc), SOURCE_HINT)
    except NotAJwt as exc:
        return Finding("assertion", FAIL, f"{signer.name} {exc}", SOURCE_HINT)
    life = remaining_life(claims, probe.clock())
    said = (
        "no exp" if life is None else f"{'expires in' if life > 0 else 'expired'} {abs(life):.0f} s"
    )
    message = (
        f"{signer.name}: iss {_text(claims.get('iss'))}, sub {_text(claims.get('sub'))}, "
        f"aud {_text(audiences(claims))}, {said}"
    )
    if life is None or life <= signer.reach:
        hint = "The file is stale: is the projected volume mounted, and the kubelet running?"
        return Finding("assertion", FAIL, message, hint)
    if audiences(claims) != [probe.config.audience]:
        hint = (
            f"Set the projected volume's audience to {probe.config.audience!r}: Keycloak "
            "accepts exactly its realm issuer, one audience."
        )
        return Finding("assertion", FAIL, message, hint)
    return Finding("assertion", OK, message)


def federated_client_finding(probe: Probe, attributes: dict[str, Any], label: str) -> Finding:
    """The Keycloak client's federated credential against the JWT's issuer and subject."""
    alias = attributes.get("jwt.credential.issuer")
    subject = attributes.get("jwt.credential.sub")
    message = f"{label}: identity provider {_text(alias)}, subject {_text(subject)}"
    if not alias or not subject:  # (Keycloak issued a token, so this is a surprise worth a word)
        screen = f"{probe.client_screen} > Credentials"
        hint = f"{screen}: set the identity provider (an alias from {IDP_SCREEN}) and the subject."
        return Finding("client", WARN, f"{message}: incomplete", hint)
    return Finding("client", OK, message)


def _text(value: Any) -> str:
    return (
        repr(server_text(value))
        if not isinstance(value, list)
        else repr([server_text(v) for v in value])
    )
