#!/usr/bin/env bash
# The benchmarks, side by side in one run: installs the peers, starts Keycloak and Redis, runs
# benchmarks/run.py (tables on stdout, JSON in artifacts/benchmarks/), stops what it started.
# Extra arguments go to benchmarks/run.py (e.g. --smoke, --only hot).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

scripts/setup.sh --bench
SERVICES="${SERVICES:-keycloak redis}" exec scripts/with-services.sh .venv/bin/python -m benchmarks.run "$@"
