"""What the fake's token endpoint and Admin API answer, and its HTTP shell sends as it is."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Answer:
    status: int
    body: Any  # JSON-able, bytes sent as they are, or None: no body
    content_type: str = "application/json"
    location: str | None = None  # the Location header of a 201


NO_CONTENT = Answer(204, None)


def oauth_error(status: int, error: str, description: str) -> Answer:
    """Keycloak's OAuth error shape: ``{"error": ..., "error_description": ...}``."""
    return Answer(status, {"error": error, "error_description": description})
