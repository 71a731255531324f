"""No import cycles among ledgerflow's modules, counting imports inside functions and
under TYPE_CHECKING (DESIGN.md §3).

The graph is built by grimp (import-linter's engine) on the tree of links
scripts/link-tree.sh lays out, in a child process so that `ledgerflow` resolves to
that tree. The layers themselves are import-linter's contract (scripts/lint-imports.sh);
this test also catches a cycle inside one layer.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

GRAPH = """
import json, grimp
g = grimp.build_graph("ledgerflow", cache_dir=None)
print(json.dumps(sorted(
    [m, i] for m in g.modules for i in g.find_modules_directly_imported_by(m)
)))
"""


def _imports(tmp_path: Path) -> set[tuple[str, str]]:
    tree = tmp_path / "tree"
    subprocess.run([str(ROOT / "scripts" / "link-tree.sh"), str(tree)], check=True)
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", GRAPH], env=env, cwd=tmp_path, check=True,
        capture_output=True, text=True,
    ).stdout  # fmt: skip
    return {(a, b) for a, b in json.loads(out)}


def _cycles(imports: set[tuple[str, str]]) -> list[list[str]]:
    import networkx as nx

    graph = nx.DiGraph(sorted(imports))
    return sorted(sorted(c) for c in nx.strongly_connected_components(graph) if len(c) > 1)


def test_no_import_closes_a_cycle(tmp_path: Path) -> None:
    imports = _imports(tmp_path)
    assert ("ledgerflow.fluent", "ledgerflow.client") in imports  # the graph is the real one
    cycles = _cycles(imports)
    assert not cycles, f"import cycles (imports inside functions count too): {cycles}"
