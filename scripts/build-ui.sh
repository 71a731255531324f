#!/usr/bin/env bash
# Build the web UI (ui/, Vite) into services/ui/static, the package data the wheel ships.
# Needs Node.js and npm at build time only; running Ledgerflow never does.
set -euo pipefail
cd "$(dirname "$0")/../ui"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  echo "error: building the web UI needs Node.js (20+) and npm: install them (e.g. apt-get install nodejs npm)" >&2
  exit 2
fi
npm ci --no-audit --no-fund --loglevel=error
npm run build --silent
