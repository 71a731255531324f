"""`ledgerflow tensorboard`: runs' metrics as TensorBoard event files, viewed in TensorBoard."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state


def tensorboard(
    ctx: typer.Context,
    run_ids: Annotated[
        list[str] | None, typer.Argument(help="Runs to show (with or instead of -e).")
    ] = None,
    experiment: Annotated[
        list[str] | None,
        typer.Option(
            "--experiment", "-e", help="Every run of this experiment (name or id); repeatable."
        ),
    ] = None,
    max_runs: Annotated[
        int, typer.Option("--max-runs", min=1, help="At most this many runs per -e.")
    ] = 100,
    logdir: Annotated[
        Path | None,
        typer.Option(
            "--logdir",
            help="Write the event files here and keep them (default: a temporary "
            "folder, removed when TensorBoard stops).",
        ),
    ] = None,
    export_only: Annotated[
        bool, typer.Option("--export-only", help="Write the event files; start nothing.")
    ] = False,
    host: Annotated[str, typer.Option("--host", help="TensorBoard's address.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="TensorBoard's port.")
    ] = 6006,
) -> None:
    """Export runs' metrics (every point, step and time) as TensorBoard event files, one
    folder per run, and start TensorBoard on them (installed with `pip install
    tensorboard`). `ledgerflow tensorboard RUN_ID RUN_ID`, `ledgerflow tensorboard -e
    fashion-cnn`, or `--export-only --logdir DIR` for a TensorBoard elsewhere."""
    from ledgerflow import tensorboard as tb

    client = state(ctx).client()
    ids = list(run_ids or [])
    for ref in experiment or []:
        ids += [r.info.run_id for r in client.search_runs([ref], max_results=max_runs)]
    if export_only and logdir is None:
        raise typer.BadParameter("--export-only needs --logdir DIR", param_hint="--logdir")
    if not export_only and not tb.installed():
        if logdir is None:
            output.error(
                "TensorBoard is not installed here (pip install tensorboard); "
                "--export-only --logdir DIR writes the event files for a TensorBoard elsewhere"
            )
            raise typer.Exit(1)
        output.note("TensorBoard is not installed here (pip install tensorboard): export only")
        export_only = True
    with tempfile.TemporaryDirectory(prefix="ledgerflow-tensorboard-") as tmp:
        folder = logdir if logdir is not None else Path(tmp)
        written = tb.export(ids, folder, client)
        output.note(f"{len(written)} run(s) written to {folder}")
        if export_only:
            return
        output.note(f"TensorBoard on http://{host}:{port}/ (Ctrl-C stops it)")
        raise typer.Exit(tb.launch(folder, host, port))
