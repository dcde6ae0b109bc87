"""What the token layer did in this process: plain counters, and OpenTelemetry metrics over them.

Each ``TokenManager`` counts in a ``TokenStats`` (the demo page shows them). When
``opentelemetry-api`` is installed (``pip install 'keycloak-jwt-auth[otel]'``), the meter
``keycloak_jwt_auth`` has four instruments:

- ``keycloak_jwt_auth.token.requests`` (counter; ``client``, ``outcome``: ``success``,
  ``refused``, ``unavailable`` or ``error``): one per token fetch, its retries included;
- ``keycloak_jwt_auth.token.request.duration`` (histogram, s; ``client``, ``outcome``);
- ``keycloak_jwt_auth.token.served`` (counter; ``client``, ``source``: ``memory``, ``cache`` or
  ``fetch``): tokens handed to callers. An observable counter reading ``TokenStats`` when the
  metrics are collected, so that the warm path stays a memory read and one integer add;
- ``keycloak_jwt_auth.admin.requests`` (counter; ``client``, ``method``, ``status`` as a string).

Without ``opentelemetry-api`` nothing is imported and nothing is recorded beyond the counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from keycloak_jwt_auth.exceptions import KeycloakUnavailableError, TokenEndpointError

try:
    from opentelemetry import metrics as otel
except ImportError:  # pragma: no cover (the tests run with the extra installed)
    otel = None  # type: ignore[assignment]

METER_NAME = "keycloak_jwt_auth"
SOURCES = ("memory", "cache", "fetch")


class TokenStats:
    """One client's counts in this process. Plain integer adds without a lock: two threads
    adding at once may, rarely, lose one, which a counter tolerates; a lock would cost more than
    the memory read it counts."""

    __slots__ = ("memory", "cache", "fetch", "renewals", "outcomes")

    def __init__(self) -> None:
        self.memory = 0  # tokens served from this process's memory
        self.cache = 0  # ... read from the shared cache
        self.fetch = 0  # ... that a token request brought
        self.renewals = 0  # token requests that replaced a still-valid token
        self.outcomes: dict[str, int] = {}  # token requests by outcome

    def __repr__(self) -> str:
        return f"<TokenStats {self.as_dict()}>"

    def served(self, source: str) -> None:
        setattr(self, source, getattr(self, source) + 1)

    @property
    def requests(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "token_requests": self.requests,
            "token_request_failures": self.requests - self.outcomes.get("success", 0),
            "renewals": self.renewals,
            "served": {source: getattr(self, source) for source in SOURCES},
        }


def outcome(error: BaseException | None) -> str:
    if error is None:
        return "success"
    if isinstance(error, KeycloakUnavailableError):
        return "unavailable"
    return "refused" if isinstance(error, TokenEndpointError) else "error"


def record_token_request(
    client: str, stats: TokenStats, *, duration: float, error: BaseException | None, renewal: bool
) -> None:
    result = outcome(error)
    stats.outcomes[result] = stats.outcomes.get(result, 0) + 1
    if renewal and error is None:
        stats.renewals += 1
    if _instruments is not None:
        attributes = {"client": client, "outcome": result}
        _instruments.token_requests.add(1, attributes)
        _instruments.token_request_duration.record(duration, attributes)


def record_admin_request(client: str, method: str, status: int) -> None:
    if _instruments is not None:
        attributes = {"client": client, "method": method, "status": str(status)}
        _instruments.admin_requests.add(1, attributes)


# --- OpenTelemetry -----------------------------------------------------------------------------


class Instruments:
    def __init__(self, meter: Any) -> None:
        self.token_requests = meter.create_counter(
            "keycloak_jwt_auth.token.requests",
            unit="{request}",
            description="Token requests to Keycloak's token endpoint, by outcome",
        )
        self.token_request_duration = meter.create_histogram(
            "keycloak_jwt_auth.token.request.duration",
            unit="s",
            description="Duration of token requests, retries included",
        )
        self.admin_requests = meter.create_counter(
            "keycloak_jwt_auth.admin.requests",
            unit="{request}",
            description="Admin REST API requests, by method and HTTP status",
        )
        meter.create_observable_counter(
            "keycloak_jwt_auth.token.served",
            callbacks=[lambda options: _observations()],
            unit="{token}",
            description="Tokens handed to callers, by where they came from",
        )


def _observations() -> Iterator[Any]:
    assert otel is not None
    for client, stats in _served():
        for source in SOURCES:
            yield otel.Observation(getattr(stats, source), {"client": client, "source": source})


Served = Callable[[], Iterable[tuple[str, TokenStats]]]  # (client name, its stats) of each manager

_instruments: Instruments | None = None
_served: Served = tuple  # the managers' counts; ``clients`` registers itself at import


def count_served_from(source: Served) -> None:
    """Where the "served" instrument reads the managers' counts (the per-client handler, which
    this module cannot import: the managers import this module)."""
    global _served
    _served = source


def use_meter_provider(provider: Any = None) -> None:
    """Create the instruments on ``provider`` (default: OpenTelemetry's global provider, which
    may be set before or after this app is imported). Tests pass their own SDK provider."""
    global _instruments
    if otel is None:  # pragma: no cover (the tests run with the extra installed)
        return
    meter = (provider or otel.get_meter_provider()).get_meter(METER_NAME)
    _instruments = Instruments(meter)
