"""Token requests counted at Keycloak itself: its CLIENT_LOGIN events, read with the Admin API."""

from __future__ import annotations

import time
from typing import Any

EVENT_SETTLE_SECONDS = 1.0  # Keycloak writes events as it answers; the last ones need a moment


def token_events(
    client_id: str, since: float, until: float, *, kind: str = "CLIENT_LOGIN"
) -> list[dict[str, Any]]:
    """The CLIENT_LOGIN events (or another ``kind``: TOKEN_EXCHANGE) of ``client_id`` between
    two epoch times (needs Django set up, with the default client allowed to read events)."""
    from keycloak_jwt_auth import KeycloakAdmin

    time.sleep(EVENT_SETTLE_SECONDS)
    events = KeycloakAdmin().get("events", client=client_id, type=kind, max=1_000_000)
    return [e for e in events if since * 1000 <= e["time"] <= until * 1000]
