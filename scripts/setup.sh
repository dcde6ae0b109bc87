#!/usr/bin/env bash
# Creates .venv and installs the Python dependencies: runtime only; --dev adds the test and lint
# tools, --bench the peers the benchmarks compare against. Safe to run again.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

requirements=(-r requirements.txt)
for flag in "$@"; do
  case "$flag" in
    --dev) requirements+=(-r requirements-dev.txt) ;;
    --bench) requirements+=(-r requirements-bench.txt) ;;
    *) echo "usage: $0 [--dev] [--bench]" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "setup.sh: Python 3.10 or newer is needed" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check "${requirements[@]}"
[ -f .env ] || cp .env.example .env
echo "setup.sh: .venv ready (${requirements[*]})" >&2
