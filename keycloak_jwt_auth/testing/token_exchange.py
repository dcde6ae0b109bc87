"""The fake's standard token exchange (RFC 8693), answered as Keycloak 26.7 answers it
(measured): its checks in its order, refused in its words. The exchanged token has ``aud`` =
the audience (one string), ``azp`` = the requester, no refresh token, and the requester's full
lifespan from the moment of the exchange (not capped at the subject token's ``exp``); with a
DPoP proof on the request, bound to its key.

A client exchanges only when a test switched it on (``FakeClient.standard_token_exchange``, as
Keycloak's client attribute ``standard.token.exchange.enabled``) and only for the audiences
declared available to it (``FakeClient.exchange_audiences``: an audience mapper or a client role
of that client, in Keycloak)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import jwt

from keycloak_jwt_auth.testing.realm import FakeClient, Realm
from keycloak_jwt_auth.testing.wire import Answer, oauth_error

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
NOT_ENABLED = "Standard token exchange is not enabled for the requested client"

Issue = Callable[[FakeClient, str | None], dict[str, Any]]  # a token response, for an audience


def exchange(
    realm: Realm,
    client: FakeClient,
    form: Mapping[str, str],
    *,
    verify: Callable[[str], dict[str, Any]],
    issue: Issue,
) -> Answer:
    """The answer to an authenticated ``client``'s exchange request: ``verify`` gives the
    claims of a token this fake issued (raising otherwise), ``issue`` a token response."""
    if not client.standard_token_exchange:
        return oauth_error(400, "invalid_request", NOT_ENABLED)
    for field in ("subject_token", "subject_token_type"):
        if not form.get(field):
            description = f"Parameter '{field}' required for standard token exchange"
            return oauth_error(400, "invalid_request", description)
    try:
        claims = verify(form["subject_token"])
    except jwt.PyJWTError:
        return oauth_error(400, "invalid_request", "Invalid token")
    if client.client_id not in _audiences(claims) and claims.get("azp") != client.client_id:
        return oauth_error(403, "access_denied", "Client is not within the token audience")
    audience = form.get("audience")
    if audience is not None:
        if audience not in realm.clients:
            return oauth_error(400, "invalid_client", "Audience not found")
        if audience not in client.exchange_audiences:
            description = f"Requested audience not available: {audience}"
            return oauth_error(400, "invalid_request", description)
    response = issue(client, audience)
    response["issued_token_type"] = ACCESS_TOKEN_TYPE
    return Answer(200, response)


def _audiences(claims: Mapping[str, Any]) -> list[Any]:
    audience = claims.get("aud")
    return audience if isinstance(audience, list) else [audience]
