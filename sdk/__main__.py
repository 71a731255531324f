"""`python -m ledgerflow`: the same as the `ledgerflow` command."""

from ledgerflow.cli import main

main()
