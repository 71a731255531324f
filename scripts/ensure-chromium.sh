#!/usr/bin/env bash
# The browser tests (tests/ui) drive Debian's Chromium; never a downloaded browser.
# Installs it when run as root (CI), otherwise says exactly what is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "== installing chromium (Debian package) for the browser tests"
  apt-get install -y -q chromium >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }
  exit 0
fi
echo "error: the browser tests need Debian's chromium: run 'sudo apt-get install chromium'" >&2
echo "       (or point LEDGERFLOW_CHROMIUM at a Chromium binary)" >&2
exit 2
