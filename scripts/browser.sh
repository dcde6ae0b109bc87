#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
#   scripts/browser.sh install
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
NAME=browser.sh
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

case "${1:-}" in
  install)
    [ -x "$CHROMIUM" ] || ensure_command chromium chromium "$ROOT/.browser-apt.log"
    ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
