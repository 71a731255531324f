#!/usr/bin/env bash
# Create .venv in the repository (if missing) and install Ledgerflow with the given extras.
# Usage: scripts/bootstrap-venv.sh demo|test|bench
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${1:-demo}"
python="${PYTHON:-python3.11}"
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: $python not found; Ledgerflow needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 2
fi
# The web UI ships in the package (services/ui/static): build it first (needs npm).
scripts/build-ui.sh
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
# torch first and pinned: the CPU build lies on this machine's disk, and any
# unpinned torch requirement would otherwise pull a multi-GB CUDA build.
if [ "$extras" != "core" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]"
