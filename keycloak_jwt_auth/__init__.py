"""Keycloak service-account tokens for Django, with ``client_secret_jwt`` client authentication.

The secret signs a short-lived assertion and never leaves the process; the token is shared
through Django's cache so a whole deployment fetches one per lifetime.
"""

from __future__ import annotations

from typing import Any

from .admin import AsyncKeycloakAdmin, KeycloakAdmin
from .auths.authorize import aauth_headers, auth_headers
from .auths.requests_auth import ServiceAccountAuth
from .clients import aget_access_token, get_access_token, get_token_manager
from .exceptions import (
    AdminAPIError,
    AdminAuthenticationError,
    AdminBadRequestError,
    AdminConflictError,
    AdminEmailNotConfiguredError,
    AdminForbiddenError,
    AdminNotFoundError,
    AdminUnavailableError,
    AssertionUnusableError,
    ConfigurationError,
    InvalidClientError,
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    InvalidTokenResponseError,
    KeycloakJWTAuthError,
    KeycloakUnavailableError,
    OAuthError,
    TLSError,
    TokenEndpointError,
    TokenEndpointUnavailableError,
    TokenExchangeError,
    UnauthorizedClientError,
)
from .tokens.manager import TokenManager
from .tokens.token import AccessToken

# The distribution's version too: pyproject.toml reads it from here.
__version__ = "0.2.0.dev0"

__all__ = [
    "AccessToken",
    "AdminAPIError",
    "AdminAuthenticationError",
    "AdminBadRequestError",
    "AdminConflictError",
    "AdminEmailNotConfiguredError",
    "AdminForbiddenError",
    "AdminNotFoundError",
    "AdminUnavailableError",
    "AssertionUnusableError",
    "AsyncKeycloakAdmin",
    "ConfigurationError",
    "HttpxServiceAccountAuth",
    "InvalidClientError",
    "InvalidGrantError",
    "InvalidRequestError",
    "InvalidScopeError",
    "InvalidTokenResponseError",
    "KeycloakAdmin",
    "KeycloakJWTAuthError",
    "KeycloakUnavailableError",
    "OAuthError",
    "TLSError",
    "ServiceAccountAuth",
    "TokenEndpointError",
    "TokenEndpointUnavailableError",
    "TokenExchangeError",
    "TokenManager",
    "UnauthorizedClientError",
    "aauth_headers",
    "aget_access_token",
    "auth_headers",
    "get_access_token",
    "get_token_manager",
]


def __getattr__(name: str) -> Any:
    # HttpxServiceAccountAuth subclasses httpx.Auth: imported on first use, so that the package
    # imports without httpx (a ConfigurationError then says which extra to install).
    if name == "HttpxServiceAccountAuth":
        from .auths.httpx_auth import HttpxServiceAccountAuth

        return HttpxServiceAccountAuth
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
