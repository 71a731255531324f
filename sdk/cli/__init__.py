"""The `ledgerflow` command line."""
