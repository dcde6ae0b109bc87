"""Time the demo's ``/api/users/`` end to end over HTTP (median of many calls).

Start the demo first (``scripts/demo.sh``), then:

    python -m benchmarks.api_users [--url http://127.0.0.1:8000/api/users/] [--calls 500]

Each call opens a new connection by default: Django's development server answers a kept-alive
connection with a ~40 ms delayed-ACK stall per request, which would measure runserver, not the
view (``--keep-alive`` shows it).
"""

from __future__ import annotations

import argparse
import statistics
import time

import requests


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8000/api/users/")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--keep-alive", action="store_true", help="reuse one connection")
    args = parser.parse_args(argv)

    session = requests.Session()
    get = session.get if args.keep_alive else requests.get  # requests.get: a new connection
    for _ in range(args.warmup):
        get(args.url, timeout=30).raise_for_status()
    latencies = []
    for _ in range(args.calls):
        started = time.perf_counter()
        response = get(args.url, timeout=30)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    latencies.sort()
    print(
        f"{args.url}: {args.calls} calls, median {statistics.median(latencies):.2f} ms, "
        f"p99 {latencies[int(0.99 * len(latencies)) - 1]:.2f} ms, "
        f"{args.calls / (sum(latencies) / 1000):.0f} calls/s sequential"
    )


if __name__ == "__main__":
    main()
