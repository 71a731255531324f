"""`ledgerflow metrics …`: a metric's full history."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

app = typer.Typer(help="Read metric histories.", no_args_is_help=True)


@app.command("history")
def history(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    key: Annotated[str, typer.Argument(help="The metric's name, e.g. loss.")],
    max_points: Annotated[
        int | None,
        typer.Option(
            "--max-points",
            min=2,
            help="Downsample to at most N points, keeping the first, the "
            "last and each stretch's lowest and highest value.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print every point of one metric of a run, in step order."""
    points = state(ctx).backend().queries.get_metric_history(run_id, key, max_points)
    if as_json:
        output.print_json(points)
        return
    if not points:
        output.note(f"run {run_id} has no points for metric {key!r}")
        return
    output.table(
        ["step", "value", "time"],
        [(p.step, p.value, output.format_time_ms(p.timestamp)) for p in points],
        title=f"{key} ({len(points)} points)",
    )
