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
