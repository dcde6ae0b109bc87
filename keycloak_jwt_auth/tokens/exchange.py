"""Tokens for one audience, by Keycloak's standard token exchange (RFC 8693).

The client's own token (the *subject*, from the client's own manager) is exchanged for a token
whose ``aud`` is one API: a token stolen from API A is then useless at API B. The exchange is
one more request of the token flow (``exchange_flow``: the same client authentication, retries
and refused-signature rules), and the exchanged token is cached, renewed and single-flight like
the client's own: ``ExchangeManager`` is a ``TokenManager`` whose flow is the exchange and whose
store key carries the audience.

Keycloak gives an exchanged token the client's full lifespan from the moment of the exchange,
not capped at the subject's expiry; this module caps it (``capped``), so an exchanged token is
never handed out after the token it came from, and is renewed when it is. An exchange therefore
waits, briefly, for a subject that is not due for renewal: exchanging a token about to be
replaced would buy a token that must be replaced as soon.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Generator

from django.views.decorators.debug import sensitive_variables

from keycloak_jwt_auth.client_auth import ClientAuthentication
from keycloak_jwt_auth.client_auth.dpop import DPoPSigner
from keycloak_jwt_auth.exceptions import OAuthError, TokenExchangeError
from keycloak_jwt_auth.http.steps import Pause, Reply
from keycloak_jwt_auth.settings import ClientConfig

from .flow import Fetched, TokenFlow, longest_fetch, token_flow
from .manager import TokenManager
from .store import TokenStore
from .token import AccessToken

GRANT_TYPE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_POLL = 0.1  # seconds between looks while the subject token is being renewed


@sensitive_variables("subject")
def exchange_grant(subject: AccessToken, audience: str) -> dict[str, str]:
    """The form fields of a standard token exchange of ``subject`` for ``audience``."""
    return {
        "grant_type": GRANT_TYPE,
        "subject_token": subject.value,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "audience": audience,
    }


@sensitive_variables("subject")
def exchange_flow(
    config: ClientConfig,
    authentication: ClientAuthentication,
    subject: AccessToken,
    audience: str,
    *,
    hint: object = None,
    retries: int | None = None,
    dpop: DPoPSigner | None = None,
) -> TokenFlow:
    """Exchange ``subject`` (the client's own token) for a token for ``audience``: the token
    flow with the exchange's form, its OAuth refusals raised as ``TokenExchangeError``, its
    token capped at the subject's. With ``dpop`` (a DPoP client), the request carries a proof
    and the token must come back bound to the same key, like the client's own."""
    grant = exchange_grant(subject, audience)
    try:
        fetched = yield from token_flow(
            config, authentication, hint=hint, retries=retries, dpop=dpop, grant=grant
        )
    except OAuthError as exc:
        raise TokenExchangeError(
            exc.error,
            exc.error_description,
            status=exc.status or 400,
            client_id=config.client_id,
            audience=audience,
        ) from None
    return Fetched(capped(fetched.token, subject), fetched.signer)


def capped(token: AccessToken, subject: AccessToken) -> AccessToken:
    """``token``, living no longer than ``subject`` (Keycloak's exchanged token may outlive the
    token it came from by up to a whole lifespan). One that would outlive it takes the
    subject's time window: handed out until the subject stops being, and due for renewal when
    the subject is, so that one exchange follows each renewal of the client's own token."""
    if token.expires_at <= subject.expires_at and token.usable_until <= subject.usable_until:
        return token
    return dataclasses.replace(token, issued_at=subject.issued_at, expires_at=subject.expires_at)


AUDIENCE_LIMIT = 255  # characters: a client id


def check_audience(audience: object) -> None:
    """A usable ``audience``: a client id (non-empty text, no control characters)."""
    if not isinstance(audience, str) or not audience.strip():
        raise ValueError("audience must be the client id of an API of the realm (a string)")
    if len(audience) > AUDIENCE_LIMIT or not audience.isprintable():
        raise ValueError(
            f"audience must be a client id: printable, at most {AUDIENCE_LIMIT} characters"
        )


class ExchangeManager(TokenManager):
    """The token of one client for one ``audience``: renewed ahead of expiry, single-flight
    across threads, tasks, processes and hosts by the ``TokenManager`` policy itself; only its
    flow (an exchange of the ``subject`` manager's token) and its cache key differ. A DPoP
    client's exchanged tokens are bound to its key too: Keycloak binds them to the proof of
    the exchange request, and the same signer (and nonce book) serves both managers."""

    def __init__(self, subject: TokenManager, audience: str) -> None:
        super().__init__(subject.config, subject.authentication)
        self.subject = subject
        self.audience = audience
        self.dpop = subject.dpop
        jkt = None if self.dpop is None else self.dpop.jkt
        self.store = TokenStore(subject.config, bound_to=jkt, audience=audience)

    def __repr__(self) -> str:
        return (
            f"<ExchangeManager client={self.config.name!r} "
            f"client_id={self.config.client_id!r} audience={self.audience!r}>"
        )

    def _token_flow(self, hint: object) -> TokenFlow:
        # A generator: the subject is obtained when the driver first pumps it, inside the
        # fetch's own error handling (a failure lands the flight and releases the lock).
        subject = yield from self._fresh_subject()
        return (
            yield from exchange_flow(
                self.config, self.authentication, subject, self.audience, hint=hint, dpop=self.dpop
            )
        )

    def _fresh_subject(self) -> Generator[Pause, Reply | None, AccessToken]:
        """The client's own token, from its own manager; when that token is due for renewal,
        its replacement (waited for in pauses, which keep this fetch's lock alive), or after
        one fetch's worst case, the current one."""
        subject = self.subject.get_token()
        deadline = time.monotonic() + longest_fetch(self.config)
        while time.time() >= self.subject.renew_from(subject) and time.monotonic() < deadline:
            yield Pause(SUBJECT_POLL)
            subject = self.subject.get_token()
        return subject
