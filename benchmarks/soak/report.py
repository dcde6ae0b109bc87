"""What the fault run proves: each call judged against the promise, and the table per fault.

The promise: no call fails and no caller waits while a valid token exists, and a deployment asks
Keycloak for one token per renewal period (plus what a fault justifies). A failed call is
*justified* when no valid token existed (Keycloak issued none within a lifetime before it), when
it needed Keycloak's Admin API while Keycloak was down, or when it was the request a killed
worker was serving; any other failure breaks the promise. A call over SLOW seconds breaks it
unless it waited for Keycloak to come back (a cold caller must not wait out a back-off).
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from .faults import Window
from .load import Call

SLOW = 5.0  # seconds: a call this long waited for something, not for one token request
EXPIRY_LEEWAY = 1.0  # the app hands a token out until a second before it expires
SLACK = 0.5  # between Keycloak's event time and the moment the app received the token
CONNECTION_LOST = {"ConnectionError", "ChunkedEncodingError"}


@dataclass
class Phase:
    """A stretch of the run: one fault's window and its aftermath, or the rest ("steady")."""

    name: str
    ranges: list[tuple[float, float]]
    calls: list[Call] = field(default_factory=list)
    allowance: int = 0  # token requests the fault justifies beyond the renewals
    token_requests: int = 0
    renewals: int = 0  # the most renewals the phase can hold: one per renewal period
    justified: Counter[str] = field(default_factory=Counter)
    broken: list[str] = field(default_factory=list)

    def holds(self, moment: float) -> bool:
        return any(low <= moment < high for low, high in self.ranges)

    @property
    def ideal(self) -> int:
        return self.renewals + self.allowance

    @property
    def seconds(self) -> float:
        return sum(high - low for low, high in self.ranges)


class Judge:
    """Decides, for each call, whether the promise held."""

    def __init__(
        self, token_times: Sequence[float], windows: Sequence[Window], lifetime: float, since: float
    ) -> None:
        self.token_times, self.windows, self.lifetime = sorted(token_times), windows, lifetime
        self.since = since  # the run's start: calls are named by their offset from it

    def valid_token_during(self, call: Call) -> bool:
        """Keycloak had issued a token that the app could hand out from the call's start to its
        end (the app stops EXPIRY_LEEWAY before expiry; SLACK for the event's timestamp)."""
        last_moment = call.end + EXPIRY_LEEWAY + SLACK
        return any(t <= call.start and last_moment < t + self.lifetime for t in self.token_times)

    def failure_reason(self, call: Call) -> str | None:
        """Why a failed call is allowed, or None: it breaks the promise."""
        if not self.valid_token_during(call):
            return "no valid token existed"
        for window in self.windows:
            overlaps = call.start <= window.end and call.end >= window.start
            if window.keycloak_down and call.uses_admin_api and overlaps:
                return "needed the Admin API while Keycloak was down"
            cut = window.cuts and call.kind.startswith(window.cuts)
            if cut and call.detail in CONNECTION_LOST and overlaps:
                return "served by the killed worker"
        return None

    def slow_is_justified(self, call: Call) -> bool:
        """A slow call may have waited for Keycloak to come back: it was under way when Keycloak
        answered again and ended within SLOW of that. A call that waited out a failed renewal's
        back-off (another process's lock), during the outage or after it, is not."""
        return any(
            w.keycloak_down and call.start <= w.end <= call.end <= w.end + SLOW
            for w in self.windows
        )

    def judge(self, call: Call, phase: Phase) -> None:
        when = f"{call.kind} at +{call.start - self.since:.1f} s"
        if not call.ok:
            reason = self.failure_reason(call)
            if reason:
                phase.justified[reason] += 1
            else:
                phase.broken.append(f"{when} failed ({call.detail}) while a valid token existed")
        if call.seconds > SLOW and not self.slow_is_justified(call):
            phase.broken.append(f"{when} took {call.seconds:.1f} s")


def phases(windows: Sequence[Window], since: float, until: float, aftermath: float) -> list[Phase]:
    """One phase per fault (its window plus ``aftermath``, cut at the next fault), then the rest."""
    ordered = sorted(windows, key=lambda w: w.start)
    result, covered = [], []
    for index, window in enumerate(ordered):
        stop = ordered[index + 1].start if index + 1 < len(ordered) else until
        span = (window.start, min(window.end + aftermath, stop))
        covered.append(span)
        result.append(Phase(window.name, [span], allowance=window.allowance))
    rest, cursor = [], since
    for low, high in covered:
        if low > cursor:
            rest.append((cursor, low))
        cursor = max(cursor, high)
    if cursor < until:
        rest.append((cursor, until))
    return [Phase("no fault (steady)", rest), *result]


def assess(
    calls: Sequence[Call],
    token_times: Sequence[float],
    windows: Sequence[Window],
    since: float,
    until: float,
    lifetime: float,
) -> tuple[list[Phase], Phase]:
    """Every call judged in its phase, the token requests counted per phase against the ideal
    (one per renewal period, two thirds of a lifetime, plus each fault's allowance)."""
    period = lifetime * 2 / 3
    judge = Judge(token_times, windows, lifetime, since)
    parts = phases(windows, since, until, aftermath=2 * lifetime)
    for part in parts:
        part.token_requests = sum(1 for t in token_times if part.holds(t))
        part.renewals = sum(math.floor((high - low) / period) + 1 for low, high in part.ranges)
    for call in calls:
        part = next((p for p in parts[1:] if p.holds(call.start)), parts[0])
        part.calls.append(call)
        judge.judge(call, part)
    parts = merged(parts)
    allowance = sum(w.allowance for w in windows)
    overall = Phase("whole run", [(since, until)], list(calls), allowance=allowance)
    overall.token_requests = len(token_times)
    overall.renewals = 1 + math.floor((until - since) / period)
    for part in parts:
        overall.justified.update(part.justified)
        overall.broken += part.broken
    return parts, overall


def merged(parts: Sequence[Phase]) -> list[Phase]:
    """One phase per kind of fault ("× N" when the full soak repeated it), in order."""
    by_name: dict[str, list[Phase]] = {}
    for part in parts:
        by_name.setdefault(part.name, []).append(part)
    result = []
    for name, same in by_name.items():
        whole = Phase(name if len(same) == 1 else f"{name} × {len(same)}", [])
        for part in same:
            whole.ranges += part.ranges
            whole.calls += part.calls
            whole.allowance += part.allowance
            whole.token_requests += part.token_requests
            whole.renewals += part.renewals
            whole.justified.update(part.justified)
            whole.broken += part.broken
        result.append(whole)
    return result


def keycloak_returns(windows: Sequence[Window], token_times: Sequence[float]) -> str:
    """Per Keycloak restart: how long it was down, and how long after it answered again the
    deployment got its first token (a stall when that is more than one request)."""
    lines = []
    for w in windows:
        if w.keycloak_down:
            first = min((t for t in token_times if t >= w.end), default=math.inf)
            lines.append(f"down {w.end - w.start:.1f} s, first token {first - w.end:.1f} s later")
    return "; ".join(lines) or "none"


def milliseconds(values: list[float], quantile: float) -> str:
    if not values:
        return "-"
    if quantile >= 1:
        return f"{max(values) * 1000:.0f}"
    if len(values) == 1:
        return f"{values[0] * 1000:.0f}"
    percentiles = statistics.quantiles(values, n=100, method="inclusive")
    return f"{percentiles[round(quantile * 100) - 1] * 1000:.0f}"


def table(parts: Sequence[Phase], overall: Phase) -> str:
    lines = [
        "| phase | seconds | calls | failed | justified | broken | token requests (Keycloak) "
        "| ideal: renewals + fault | p50 ms | p99 ms | max ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for part in [*parts, overall]:
        latencies = [c.seconds for c in part.calls]
        failed = sum(1 for c in part.calls if not c.ok)
        lines.append(
            f"| {part.name} | {part.seconds:.0f} | {len(part.calls)} | {failed} "
            f"| {sum(part.justified.values())} | {len(part.broken)} | {part.token_requests} "
            f"| {part.renewals} + {part.allowance} | {milliseconds(latencies, 0.5)} "
            f"| {milliseconds(latencies, 0.99)} "
            f"| {milliseconds(latencies, 1)} |"
        )
    return "\n".join(lines)
