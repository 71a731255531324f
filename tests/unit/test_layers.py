"""No import cycles among ledgerflow's modules, counting imports inside functions and
under TYPE_CHECKING (DESIGN.md §3).

The graph is built by grimp (import-linter's engine) on the tree of links
scripts/link-tree.sh lays out, in a child process so that `ledgerflow` resolves to
that tree. A few imports still close cycles today; they are listed below with the
branch removing them. The list only shrinks: the test fails when a listed import no
longer exists (delete it from the list) and when any other import closes a cycle.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

KNOWN_CYCLE_IMPORTS = {
    # The model format reaches up into the fluent API and the Client (removed by branch
    # format): flavors -> autologging -> fluent -> client -> session -> bootstrap ->
    # bundle service -> bundle workers -> flavors.
    ("ledgerflow.models.flavor_io", "ledgerflow"),
    ("ledgerflow.models.flavor_io", "ledgerflow.fluent"),
    ("ledgerflow.models.model", "ledgerflow"),
    ("ledgerflow.models.uri", "ledgerflow.client"),
    ("ledgerflow.pytorch._lightning", "ledgerflow._autologging"),
    ("ledgerflow.pytorch._lightning", "ledgerflow.fluent"),
    ("ledgerflow.pytorch._serialize", "ledgerflow.fluent"),
    ("ledgerflow.pytorch.autolog", "ledgerflow"),
    ("ledgerflow.pytorch.autolog", "ledgerflow._autologging"),
    ("ledgerflow.pytorch.autolog", "ledgerflow.fluent"),
    ("ledgerflow.sklearn.autolog", "ledgerflow._autologging"),
    ("ledgerflow.tensorflow.autolog", "ledgerflow._autologging"),
    ("ledgerflow.tensorflow.callback", "ledgerflow._autologging"),
    ("ledgerflow.tensorflow.callback", "ledgerflow.fluent"),
    ("ledgerflow.services.serving.loading", "ledgerflow.client"),
    # Flavor packages and their autologging import each other (removed by branch format).
    ("ledgerflow.pytorch._lightning", "ledgerflow.pytorch.autolog"),
    ("ledgerflow.pytorch.autolog", "ledgerflow.pytorch"),
    ("ledgerflow.sklearn.autolog", "ledgerflow.sklearn"),
    ("ledgerflow.tensorflow.autolog", "ledgerflow.tensorflow"),
    ("ledgerflow.onnx._runtime", "ledgerflow.onnx"),
}

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


def test_no_import_closes_a_cycle_but_the_known_ones_being_removed(tmp_path: Path) -> None:
    imports = _imports(tmp_path)
    assert ("ledgerflow.fluent", "ledgerflow.client") in imports  # the graph is the real one
    gone = sorted(KNOWN_CYCLE_IMPORTS - imports)
    assert not gone, f"these imports are gone: delete them from KNOWN_CYCLE_IMPORTS: {gone}"
    cycles = _cycles(imports - KNOWN_CYCLE_IMPORTS)
    assert not cycles, f"import cycles (imports inside functions count too): {cycles}"
