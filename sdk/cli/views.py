"""`ledgerflow replay` and `ledgerflow dead-letters …`: the views and what they refused."""

from __future__ import annotations

from typing import Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

dead_letters_app = typer.Typer(
    help="Events the projector could not apply (corrupt or rejected), with the reason.",
    no_args_is_help=True,
)


def replay(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Rebuild every view from the event log.

    Drops the views and folds the whole log again, in one transaction: a failed rebuild
    keeps the old views.

    Prints how many events were applied and how many dead letters there are afterwards.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    backend = state(ctx).embedded()
    with Progress(
        TextColumn("replaying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=output.err_console(),
        transient=True,
        disable=not output.err_console().is_terminal,
    ) as bar:
        task = bar.add_task("replay", total=backend.log.head().total())

        def progress(applied: int, size: int | None) -> None:
            bar.update(task, completed=applied, total=size)

        applied = backend.projector.rebuild(progress=progress)
    dead = backend.projector.dead_letter_count()
    if as_json:
        output.print_json({"applied": applied, "dead_letters": dead})
        return
    output.line(
        f"replayed {applied} events; {dead} dead letters", style="yellow" if dead else "green"
    )
    if dead:
        output.note("see them with: ledgerflow dead-letters list")


@dead_letters_app.command("list")
def list_dead_letters(
    ctx: typer.Context,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, help="At most this many, oldest log position first."),
    ] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List dead letters: the log position, event, kind (corrupt or rejected) and reason."""
    backend = state(ctx).embedded()
    backend.refresh()
    letters = backend.projector.dead_letters(limit)
    if as_json:
        output.print_json(letters)
        return
    if not letters:
        output.note("no dead letters")
        return
    output.table(
        ["position", "event id", "type", "stream", "kind", "reason", "data"],
        [
            (
                d["position"],
                d["event_id"],
                d["type"],
                d["stream"],
                d["kind"],
                d["reason"],
                output.shorten(d["data"], 80),
            )
            for d in letters
        ],
        no_wrap=["position", "event id"],
    )
