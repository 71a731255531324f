#!/usr/bin/env bash
# Usage: scripts/link-tree.sh DIR -> lays out DIR/ledgerflow as the installed package looks
# (ledgerflow -> sdk/, ledgerflow.events -> events/, ...) out of links to the checkout's files.
# Tools that map import names onto folders (mypy, import-linter) read this tree: they cannot
# follow the package-dir mapping through an editable install.
set -euo pipefail
cd "$(dirname "$0")/.."
tree="$1"
rm -rf "$tree" && mkdir -p "$tree"
cp -rs "$PWD/sdk" "$tree/ledgerflow"
for part in events services workers; do
  cp -rs "$PWD/$part" "$tree/ledgerflow/$part"
done
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
