"""The demo realm file (keycloak/demo-realm.json), read by tests and benchmarks alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
REALM_FILE = ROOT / "keycloak" / "demo-realm.json"


def realm_secrets() -> dict[str, str]:
    """The demo realm's throwaway client secrets, by client id (key clients have none)."""
    realm = json.loads(REALM_FILE.read_text())
    return {c["clientId"]: c["secret"] for c in realm["clients"] if "secret" in c}


def realm_secret(client_id: str) -> str:
    return realm_secrets()[client_id]


def realm_users() -> list[dict[str, Any]]:
    """The demo users (service-account users left out)."""
    realm = json.loads(REALM_FILE.read_text())
    return [u for u in realm["users"] if "serviceAccountClientId" not in u]
