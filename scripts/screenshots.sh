#!/usr/bin/env bash
# Regenerate the screenshots docs/ui.md shows: run the browser tests (each saves what it
# sees into build/ui-screenshots/), then copy them into docs/ui/.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-chromium.sh
rm -rf build/ui-screenshots
.venv/bin/python -m pytest -q -p no:cacheprovider tests/ui "$@"
mkdir -p docs/ui
cp build/ui-screenshots/*.png docs/ui/
ls docs/ui
