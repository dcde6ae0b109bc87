"""One exception tree, rooted at ``KeycloakJWTAuthError``. No message holds a secret or token."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from django.core.exceptions import ImproperlyConfigured


class KeycloakJWTAuthError(Exception):
    """Root of every error this app raises."""


SERVER_TEXT_LIMIT = 500  # characters of a server's words kept in a message


def server_text(value: object) -> str:
    """Text from a server, fit for a message, a log line or a terminal: control characters
    (an ANSI escape, a newline forging a log line...) shown escaped, and capped in length."""
    text = str(value)[:SERVER_TEXT_LIMIT]
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class ConfigurationError(KeycloakJWTAuthError, ImproperlyConfigured):
    """The ``KEYCLOAK_JWT_AUTH`` setting cannot work as it is."""


class AssertionUnusableError(ConfigurationError):
    """A ``federated_jwt`` client's external JWT cannot be sent: unreadable, not a JWT, expired
    or about to expire (``remaining``: its seconds of life, when it has an ``exp``), or its
    provider failed. ``source`` names the setting and the file or callable."""

    def __init__(self, message: str, *, source: str, remaining: float | None = None) -> None:
        super().__init__(message)
        self.source = source
        self.remaining = remaining


class KeycloakUnavailableError(KeycloakJWTAuthError):
    """Keycloak could not be reached, timed out, or answered with a server error."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TLSError(KeycloakJWTAuthError):
    """The TLS connection to Keycloak failed (often: its certificate could not be verified;
    ``plain_http``: the port speaks plain HTTP). Not retried: it is a configuration problem,
    not an outage."""

    def __init__(self, message: str, *, plain_http: bool = False) -> None:
        super().__init__(message)
        self.plain_http = plain_http


# --- token endpoint ------------------------------------------------------------------------


class TokenEndpointError(KeycloakJWTAuthError):
    """The token endpoint refused to issue a token, or answered something unusable."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class InvalidTokenResponseError(TokenEndpointError):
    """The answer was not a token response: an HTML proxy page, an empty body, bad JSON..."""

    def __init__(self, message: str, *, status: int, content_type: str) -> None:
        super().__init__(message, status=status)
        self.content_type = content_type


class OAuthError(TokenEndpointError):
    """Keycloak answered with an OAuth error (``error`` and ``error_description``)."""

    errors: ClassVar[dict[str, type[OAuthError]]] = {}
    error_code: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.error_code:
            OAuthError.errors[cls.error_code] = cls

    def __init__(self, error: str, error_description: str | None, *, status: int) -> None:
        error = server_text(error)
        error_description = None if error_description is None else server_text(error_description)
        detail = f": {error_description}" if error_description else ""
        self.hint = clock_hint(error_description)
        hint = f"; {self.hint}" if self.hint else ""
        super().__init__(f"{error}{detail} (HTTP {status}){hint}", status=status)
        self.error = error
        self.error_description = error_description

    @classmethod
    def from_response(cls, error: str, error_description: str | None, *, status: int) -> OAuthError:
        """The subclass matching ``error``, or ``OAuthError`` itself for unknown codes."""
        return cls.errors.get(error, cls)(error, error_description, status=status)


# Keycloak's words when an assertion's iat/exp do not fit its clock.
CLOCK_SYMPTOMS = ("too far in the past", "not active", "expired", "future", "not yet valid")


def clock_hint(error_description: str | None) -> str | None:
    text = (error_description or "").lower()
    if any(symptom in text for symptom in CLOCK_SYMPTOMS):
        return "check that this host's clock agrees with Keycloak's (NTP)"
    return None


class InvalidClientError(OAuthError):
    """Wrong client id, secret, algorithm, or a replayed/expired assertion."""

    error_code = "invalid_client"


class UnauthorizedClientError(OAuthError):
    """The client may not use this grant (e.g. service accounts are disabled)."""

    error_code = "unauthorized_client"


class InvalidRequestError(OAuthError):
    error_code = "invalid_request"


class InvalidScopeError(OAuthError):
    error_code = "invalid_scope"


class InvalidGrantError(OAuthError):
    error_code = "invalid_grant"


class TokenExchangeError(OAuthError):
    """Keycloak refused to exchange the client's token for ``audience`` (RFC 8693): the
    message says what to switch on in Keycloak (``fix``)."""

    def __init__(
        self,
        error: str,
        error_description: str | None,
        *,
        status: int,
        client_id: str,
        audience: str,
    ) -> None:
        super().__init__(error, error_description, status=status)
        self.client_id, self.audience = client_id, audience
        self.fix = exchange_fix(self.error, self.error_description or "", client_id, audience)
        said = f"{self.error}: {self.error_description}" if self.error_description else self.error
        hint = f" ({self.hint})" if self.hint else ""
        self.args = (
            f"Keycloak refused to exchange the token of client {server_text(client_id)} for "
            f"audience {server_text(audience)!r}: {said} (HTTP {status}). {self.fix}{hint}",
        )


def exchange_fix(error: str, description: str, client_id: str, audience: str) -> str:
    """What to change in Keycloak for a refused token exchange, from Keycloak 26's words."""
    client, audience = server_text(client_id), server_text(audience)
    if "token exchange is not enabled" in description.lower():
        return (
            f"Switch on standard token exchange for client {client} (Keycloak: Clients > "
            f"{client} > Settings > Capability config > Standard Token Exchange; the client "
            "attribute standard.token.exchange.enabled=true)."
        )
    if "audience not available" in description.lower():
        return (
            f"Make {audience!r} available to client {client}: an audience mapper for "
            f"{audience!r} on the client (Clients > {client} > Client scopes > "
            f"{client}-dedicated > Add mapper > Audience), or a client role of {audience!r} "
            f"on its service account (Clients > {client} > Service accounts roles)."
        )
    if "audience not found" in description.lower():
        return (
            f"The realm has no client {audience!r}: the audience must be the client id of "
            "a client of the realm (Keycloak: Clients)."
        )
    if error == "unsupported_grant_type":
        return (
            "This Keycloak does not serve standard token exchange: it needs Keycloak 26.2 or "
            "later with the feature token-exchange-standard (on by default)."
        )
    return "The exchange authenticates the client as its own token requests do."


class TokenEndpointNotFoundError(TokenEndpointError):
    """404 from the token endpoint: no such realm (``realm_missing``, Keycloak's "Realm does not
    exist"), or nothing at that path (a wrong path in ``SERVER_URL``: pre-17 Keycloak's
    ``/auth``, a proxy's prefix left out)."""

    def __init__(self, message: str, *, realm_missing: bool) -> None:
        super().__init__(message, status=404)
        self.realm_missing = realm_missing


class TokenEndpointUnavailableError(KeycloakUnavailableError, TokenEndpointError):
    """The token endpoint could not be reached or kept failing with 5xx after the retries."""


# --- Admin REST API ------------------------------------------------------------------------


class AdminAPIError(KeycloakJWTAuthError):
    """An Admin REST API call failed; carries the HTTP status, method, path, Keycloak's body and
    the ``realm-management`` role the call needs."""

    by_status: ClassVar[dict[int, type[AdminAPIError]]] = {}
    statuses: ClassVar[tuple[int, ...]] = ()
    explanation: ClassVar[str] = ""  # what the status means here; may name the {role}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        AdminAPIError.by_status.update(dict.fromkeys(cls.statuses, cls))

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        method: str,
        path: str,
        body: Any = None,
        required_role: str | None = None,
    ) -> None:
        super().__init__(f"{method} {path}: {message}")
        self.status = status
        self.method = method
        self.path = path
        self.body = body
        self.required_role = required_role

    @classmethod
    def from_response(
        cls, status: int, body: Any, *, method: str, path: str, role: str, note: str = ""
    ) -> AdminAPIError:
        """The error for an answer with ``status`` (the subclass from the table, 5xx being
        ``AdminUnavailableError``, whose message ends with ``note``), its message naming
        Keycloak's own words."""
        error_class = AdminUnavailableError if status >= 500 else cls.by_status.get(status, cls)
        detail = error_class.detail(body)
        if detail and detail.startswith(f"HTTP {status}"):  # Keycloak's "HTTP 403 Forbidden"
            detail = None
        message = f"HTTP {status}" + (f" ({detail})" if detail else "")
        if error_class.explanation:
            message += ": " + error_class.explanation.format(role=role)
        if error_class is AdminUnavailableError:
            message += note
        return error_class(
            message, status=status, method=method, path=path, body=body, required_role=role
        )

    @staticmethod
    def detail(body: Any) -> str | None:
        """Keycloak's own words: ``errorMessage`` (Admin API), else the OAuth-style ``error``."""
        if not isinstance(body, dict):
            return None
        return keycloak_message(body) or _text(body.get("error"))


class AdminAuthenticationError(AdminAPIError):
    """401 even after renewing the token once."""

    statuses = (401,)
    explanation = "Keycloak refused the service-account token, even a fresh one"


class AdminForbiddenError(AdminAPIError):
    """403: the service account lacks a ``realm-management`` role (named in ``required_role``)."""

    statuses = (403,)
    explanation = (
        "the service account needs the realm-management role '{role}' "
        "(Keycloak: Clients > the client > Service accounts roles)"
    )
    required_role: str


class AdminNotFoundError(AdminAPIError):
    """404: no such user, group, role... (or no such realm)."""

    statuses = (404,)
    explanation = "not found"


class AdminUnavailableError(AdminAPIError, KeycloakUnavailableError):
    """The Admin API could not be reached, timed out, or answered 5xx."""

    explanation = "Keycloak server error"


class AdminEmailNotConfiguredError(AdminAPIError):
    """The realm cannot send e-mail: it has no SMTP server (no sender address). Keycloak only
    answers 500 "Invalid sender address 'null'"; this error says what to configure."""

    explanation = (
        "the realm has no SMTP server configured, so Keycloak cannot send the e-mail "
        "(Keycloak: Realm settings > Email: set the From address and the host)"
    )


class AdminBadRequestError(AdminAPIError):
    """400: Keycloak refused the input: ``error_message`` is its message (e.g. "Invalid
    password: minimum length 12."), ``field_errors`` its per-field errors (user profile), if any."""

    statuses = (400,)

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        body = self.body if isinstance(self.body, dict) else {}
        self.error_message = keycloak_message(body)
        self.field_errors = field_errors(body)

    @staticmethod
    def detail(body: Any) -> str | None:
        """Each field's error (its params may echo the input: they stay in ``field_errors``),
        else Keycloak's message."""
        errors = field_errors(body) if isinstance(body, dict) else []
        if errors:
            return "; ".join(f"{error.field}: {error.message}" for error in errors)
        return AdminAPIError.detail(body)


class AdminConflictError(AdminAPIError):
    """409: it exists already (Keycloak's ``errorMessage``, e.g. "User exists with same
    username", is in the message and in ``error_message``)."""

    statuses = (409,)

    def __init__(self, message: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.error_message = keycloak_message(self.body) if isinstance(self.body, dict) else None


@dataclass(frozen=True)
class FieldError:
    """One field Keycloak refused: ``field`` (e.g. ``email``), its ``message`` key and params."""

    field: str | None
    message: str | None
    params: list[Any]


def field_errors(body: dict[str, Any]) -> list[FieldError]:
    """Keycloak's field errors: the body itself for one, its ``errors`` list for several."""
    listed: Any = body.get("errors")
    listed = listed if isinstance(listed, list) else []
    return [
        FieldError(_text(e.get("field")), _text(e.get("errorMessage")), list(e.get("params") or []))
        for e in [body, *listed]
        if isinstance(e, dict) and e.get("field")
    ]


def keycloak_message(body: dict[str, Any]) -> str | None:
    """The Admin API's ``errorMessage``, or an OAuth-style ``error_description``."""
    return _text(body.get("errorMessage")) or _text(body.get("error_description"))


def _text(value: Any) -> str | None:
    return server_text(value) if isinstance(value, str) and value else None
