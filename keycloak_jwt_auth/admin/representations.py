"""Keycloak's Admin API resources as plain dicts: the parts this client reads and writes."""

from __future__ import annotations

from typing import TypedDict


class UserRepresentation(TypedDict, total=False):
    id: str
    username: str
    email: str
    firstName: str
    lastName: str
    enabled: bool
    emailVerified: bool
    createdTimestamp: int
    attributes: dict[str, list[str]]
    requiredActions: list[str]
    credentials: list[CredentialRepresentation]


class CredentialRepresentation(TypedDict, total=False):
    type: str  # "password"
    value: str  # held as a Masked by this client: no repr shows it
    temporary: bool


class GroupRepresentation(TypedDict, total=False):
    id: str
    name: str
    path: str
    subGroupCount: int
    subGroups: list[GroupRepresentation]


class RoleRepresentation(TypedDict, total=False):
    id: str
    name: str
    description: str
    composite: bool
    clientRole: bool
    containerId: str


class ClientRepresentation(TypedDict, total=False):
    id: str
    clientId: str
    name: str
    enabled: bool
    publicClient: bool
    serviceAccountsEnabled: bool


class OrganizationDomainRepresentation(TypedDict, total=False):
    name: str
    verified: bool


class OrganizationRepresentation(TypedDict, total=False):
    id: str
    name: str
    alias: str  # required when the name has spaces (Keycloak derives it from the name)
    enabled: bool
    description: str
    redirectUrl: str
    attributes: dict[str, list[str]]
    domains: list[OrganizationDomainRepresentation]


class MemberRepresentation(UserRepresentation, total=False):
    membershipType: str  # "UNMANAGED" (added by an admin) or "MANAGED" (by an identity provider)


class UserSessionRepresentation(TypedDict, total=False):
    id: str  # the tokens' "sid"
    username: str
    userId: str
    ipAddress: str
    start: int
    lastAccess: int
    rememberMe: bool
    clients: dict[str, str]  # internal client id -> clientId
