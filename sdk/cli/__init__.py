"""The `ledgerflow` command line (typer + rich); `main()` is the console-script entry point."""

from ledgerflow.cli.app import app, main

__all__ = ["app", "main"]
