#!/usr/bin/env bash
# Install Ledgerflow with its test tools into .venv, lint and type-check, then run every test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap-venv.sh test
echo "== prometheus"
scripts/ensure-prometheus.sh  # tests/integration/test_prometheus.py runs the real server
scripts/ensure-chromium.sh  # the browser tests (tests/ui) drive Debian's Chromium
scripts/ensure-r.sh  # the R flavor's tests run Debian's Rscript (r-base-core, r-cran-jsonlite)
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check --quiet .
echo "== mypy"
scripts/typecheck.sh
echo "== import-linter"
scripts/lint-imports.sh
echo "== pytest"
exec .venv/bin/pytest -q -p no:cacheprovider "$@"
