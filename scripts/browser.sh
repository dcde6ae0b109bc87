#!/usr/bin/env bash
# Debian's Chromium for the browser tests (Playwright drives it; it downloads no browser).
#   scripts/browser.sh install
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"

case "${1:-}" in
  install)
    [ -x "$CHROMIUM" ] && exit 0
    if [ "$(id -u)" -ne 0 ]; then
      echo "browser.sh: $CHROMIUM is missing: install Debian's chromium (sudo apt-get install chromium)" >&2
      exit 1
    fi
    echo "browser.sh: installing Debian's chromium with apt-get (log: $ROOT/.browser-apt.log)" >&2
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; } \
      >"$ROOT/.browser-apt.log" 2>&1 || { tail -n 20 "$ROOT/.browser-apt.log" >&2; exit 1; }
    ;;
  *) echo "usage: $0 install" >&2; exit 2 ;;
esac
