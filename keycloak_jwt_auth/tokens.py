"""The access token as a value object, stored in caches as plain JSON (never a pickle)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime, timezone
from typing import Any

import jwt


@dataclasses.dataclass(frozen=True)
class AccessToken:
    """An access token and when it expires (``expires_at`` is epoch seconds, local clock)."""

    value: str = dataclasses.field(repr=False)
    expires_at: float
    token_type: str = "Bearer"
    scope: str | None = None
    issued_at: float = dataclasses.field(default_factory=time.time)

    @property
    def lifetime(self) -> float:
        return self.expires_at - self.issued_at

    @property
    def expires_at_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, tz=timezone.utc)

    def expires_in(self, now: float | None = None) -> float:
        return self.expires_at - (time.time() if now is None else now)

    def is_expired(self, leeway: float = 0.0, now: float | None = None) -> bool:
        return self.expires_in(now) <= leeway

    @property
    def authorization(self) -> str:
        """The ``Authorization`` header value."""
        return f"{self.token_type} {self.value}"

    def unverified_claims(self) -> dict[str, Any]:
        """The claims, decoded WITHOUT checking the signature: for showing, never for trusting.
        Raises ``jwt.DecodeError`` when the token is not a JWT."""
        claims: dict[str, Any] = jwt.decode(self.value, options={"verify_signature": False})
        return claims

    def status(self, *, from_cache: bool) -> dict[str, Any]:
        """What may be shown of the token besides its value: when it expires, where it came from."""
        return {
            "expires_in": int(self.expires_in()),
            "expires_at": self.expires_at_datetime.isoformat(),
            "from_cache": from_cache,
        }

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: str | bytes) -> AccessToken:
        fields: dict[str, Any] = json.loads(data)
        return cls(
            value=str(fields["value"]),
            expires_at=float(fields["expires_at"]),
            token_type=str(fields.get("token_type") or "Bearer"),
            scope=fields.get("scope"),
            issued_at=float(fields.get("issued_at") or time.time()),
        )
