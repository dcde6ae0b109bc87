"""The Keycloak Admin REST API client, sync and async.

``representations`` holds the resources as plain dicts, ``calls`` each request described once
(with its path safety and how an answer becomes a result or an error), ``support_calls`` the
client-role, organization, session and e-mail calls and ``request()``, ``clients`` the two
clients whose methods are made from those descriptions.
"""

from keycloak_jwt_auth.admin.calls import MANAGE_USERS, ROLES_BY_RESOURCE, Call, realm_path
from keycloak_jwt_auth.admin.clients import AsyncKeycloakAdmin, KeycloakAdmin, admin_session
from keycloak_jwt_auth.admin.representations import (
    ClientRepresentation,
    CredentialRepresentation,
    GroupRepresentation,
    MemberRepresentation,
    OrganizationDomainRepresentation,
    OrganizationRepresentation,
    RoleRepresentation,
    UserRepresentation,
    UserSessionRepresentation,
)

__all__ = [
    "MANAGE_USERS",
    "ROLES_BY_RESOURCE",
    "AsyncKeycloakAdmin",
    "Call",
    "ClientRepresentation",
    "CredentialRepresentation",
    "GroupRepresentation",
    "KeycloakAdmin",
    "MemberRepresentation",
    "OrganizationDomainRepresentation",
    "OrganizationRepresentation",
    "RoleRepresentation",
    "UserRepresentation",
    "UserSessionRepresentation",
    "admin_session",
    "realm_path",
]
