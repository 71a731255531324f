"""`python -m ledgerflow.cli`: the same as the `ledgerflow` command."""

from ledgerflow.cli import main

main()
