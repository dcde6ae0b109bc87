#!/usr/bin/env bash
# Creates .venv and installs the Python dependencies: runtime only, or with --dev the test and
# lint tools too. Safe to run again: it only installs what is missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

requirements=requirements.txt
[ "${1:-}" = "--dev" ] && requirements=requirements-dev.txt

PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
  || { echo "setup.sh: Python 3.10 or newer is needed" >&2; exit 1; }
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -r "$requirements"
[ -f .env ] || cp .env.example .env
echo "setup.sh: .venv ready ($requirements)" >&2
