#!/usr/bin/env bash
# Install Ledgerflow into .venv and run the main job on the embedded default (no servers).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap-venv.sh demo
exec .venv/bin/ledgerflow demo "$@"
