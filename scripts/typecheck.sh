#!/usr/bin/env bash
# mypy --strict over the ledgerflow package, on the tree of links scripts/link-tree.sh lays
# out (ledgerflow -> sdk/, ledgerflow.events -> events/, ...): mypy cannot follow the
# import-name mapping through an editable install.
set -euo pipefail
cd "$(dirname "$0")/.."
tree=build/typecheck
scripts/link-tree.sh "$tree"
MYPYPATH="$tree" exec .venv/bin/mypy -p ledgerflow "$@"
