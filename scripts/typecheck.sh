#!/usr/bin/env bash
# mypy --strict over the ledgerflow package. The import names map onto folders
# (ledgerflow -> sdk/, ledgerflow.events -> events/, ...), which mypy cannot follow
# through an editable install, so we lay out a tree of links under build/ and check that.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
rm -rf "$tree" && mkdir -p "$tree"
cp -rs "$PWD/sdk" "$tree/ledgerflow"
for part in events services workers; do
  cp -rs "$PWD/$part" "$tree/ledgerflow/$part"
done
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
MYPYPATH="$tree" exec .venv/bin/mypy -p ledgerflow "$@"
