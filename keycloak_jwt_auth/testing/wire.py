"""What the fake's token endpoint and Admin API answer, and its HTTP shell sends as it is."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, bytes sent as they are, or None: no body
    content_type: str = "application/json"
    location: str | None = None  # the Location header of a 201
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)  # e.g. DPoP-Nonce


NO_CONTENT = Answer(204, None)


def oauth_error(status: int, error: str, description: str) -> Answer:
    """Keycloak's OAuth error shape: ``{"error": ..., "error_description": ...}``."""
    return Answer(status, {"error": error, "error_description": description})


@dataclasses.dataclass(frozen=True)
class AdminRequest:
    """What an Admin API handler reads: the query string and the JSON body (None: none)."""

    query: Mapping[str, str]
    body: Any = None


class Answered(Exception):
    """Raised below an Admin API handler: send ``answer`` instead (a 400, 404, 409...)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


def admin_message(status: int, words: str) -> Answer:
    """The Admin API's own error shape: ``{"errorMessage": ...}``."""
    return Answer(status, {"errorMessage": words})
