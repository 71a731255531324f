"""`ledgerflow crate-helper`: where the R helper is, for R users to `source()` it."""

from __future__ import annotations


def crate_helper() -> None:
    """Print the path of Ledgerflow's R helper (ledgerflow_save_model saves an R predict
    function as a model pyfunc loads and `ledgerflow serve` serves). In R:
    source(system("ledgerflow crate-helper", intern = TRUE))"""
    from ledgerflow.crate.flavor import helper_path

    print(helper_path())
