#!/usr/bin/env bash
# import-linter: the layers of DESIGN.md §3 as pyproject's [tool.importlinter] contracts
# declare them, checked on the tree of links scripts/link-tree.sh lays out (import names map
# onto folders, which import-linter cannot follow through an editable install).
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/layers
scripts/link-tree.sh "$tree"
PYTHONPATH="$PWD/$tree" exec .venv/bin/lint-imports --no-cache "$@"
