"""What counting served tokens costs the warm path: ``get_access_token()`` returning the token
held in memory, without OpenTelemetry's SDK and with an SDK ``MeterProvider`` installed (its
reader collecting now and then, as an exporter would).

    python -m benchmarks.hot_metrics [--calls 200000] [--rounds 7]
    python -m benchmarks.hot_metrics --calls N --only none|sdk   # for callgrind: N warm calls

No Keycloak is needed: the warm path never leaves memory, so the token is seeded in the store.
The count itself (one integer add) is also timed alone.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
import timeit
from collections.abc import Callable, Iterator
from typing import Any

from support.peers import configure_django


def seed_warm_token() -> Callable[[], str]:
    from keycloak_jwt_auth import get_access_token, get_token_manager
    from keycloak_jwt_auth.tokens.token import AccessToken

    manager = get_token_manager()
    manager.store.write(AccessToken(value="warm.token.value", expires_at=time.time() + 3600))
    assert get_access_token() == "warm.token.value"  # now held in memory: the warm path
    return get_access_token


def per_call_ns(call: Callable[[], Any], calls: int, rounds: int) -> float:
    """The median over ``rounds`` of the mean time of one call, in ns."""
    timer = timeit.Timer(call)
    return statistics.median(timer.timeit(calls) / calls * 1e9 for _ in range(rounds))


def count_alone_ns(calls: int, rounds: int) -> float:
    """One ``stats.memory += 1``, less an empty statement."""
    from keycloak_jwt_auth.metrics import TokenStats

    stats = TokenStats()
    add = timeit.Timer("stats.memory += 1", globals={"stats": stats})
    empty = timeit.Timer("pass")
    samples = (add.timeit(calls) - empty.timeit(calls) for _ in range(rounds))
    return statistics.median(samples) / calls * 1e9


@contextlib.contextmanager
def sdk_meter_provider() -> Iterator[None]:
    """The app's instruments on an SDK provider; its reader collects once at the end."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    from keycloak_jwt_auth.metrics import use_meter_provider

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    use_meter_provider(provider)
    try:
        yield
        assert reader.get_metrics_data() is not None  # the counts reach the SDK when collected
    finally:
        use_meter_provider()
        provider.shutdown()


def with_sdk_provider(call: Callable[[], str], calls: int, rounds: int) -> float:
    with sdk_meter_provider():
        return per_call_ns(call, calls, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--only",
        choices=["none", "sdk"],
        help="just --calls warm calls, without or with an SDK MeterProvider (for callgrind)",
    )
    args = parser.parse_args()
    configure_django("locmemcache://", "django-service", "x" * 32)
    call = seed_warm_token()
    if args.only:
        with sdk_meter_provider() if args.only == "sdk" else contextlib.nullcontext():
            for _ in range(args.calls):
                call()
        return
    rows = [
        ("warm get_access_token(), no MeterProvider", per_call_ns(call, args.calls, args.rounds)),
        (
            "warm get_access_token(), SDK MeterProvider",
            with_sdk_provider(call, args.calls, args.rounds),
        ),
        ("the count alone (stats.memory += 1)", count_alone_ns(args.calls, args.rounds)),
    ]
    for label, ns in rows:
        print(f"{label:<45} {ns:8.1f} ns/call")


if __name__ == "__main__":
    main()
