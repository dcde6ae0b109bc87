"""Keycloak service-account tokens for Django, with ``client_secret_jwt`` client authentication.

The secret signs a short-lived assertion and never leaves the process; the token is shared
through Django's cache so a whole deployment fetches one per lifetime.
"""

from __future__ import annotations

from .admin_api import KeycloakAdmin
from .auth import ServiceAccountAuth
from .exceptions import (
    AdminAPIError,
    AdminAuthenticationError,
    AdminForbiddenError,
    AdminNotFoundError,
    AdminUnavailableError,
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
    UnauthorizedClientError,
)
from .manager import TokenManager, aget_access_token, get_access_token, get_token_manager
from .tokens import AccessToken

__all__ = [
    "AccessToken",
    "AdminAPIError",
    "AdminAuthenticationError",
    "AdminForbiddenError",
    "AdminNotFoundError",
    "AdminUnavailableError",
    "ConfigurationError",
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
    "TokenManager",
    "UnauthorizedClientError",
    "aget_access_token",
    "get_access_token",
    "get_token_manager",
]
