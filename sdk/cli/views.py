"""`ledgerflow replay`, `ledgerflow views …` and `ledgerflow dead-letters …`: the views,
their snapshots, and what they refused."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings

views_app = typer.Typer(
    help="Snapshots of the views: a copy with the log position it reflects, to start new "
    "views from instead of replaying the whole log.",
    no_args_is_help=True,
)
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


SnapshotPath = Annotated[Path, typer.Argument(help="The snapshot file.", dir_okay=False)]


@views_app.command("snapshot")
def snapshot(ctx: typer.Context, path: SnapshotPath, as_json: JsonFlag = False) -> None:
    """Write a consistent copy of the views (SQLite) to PATH.

    The copy holds the log position it reflects. The views first catch up with the log;
    projectors may keep writing while the copy is made. PATH must not exist. PostgreSQL
    views: use pg_dump instead.
    """
    from ledgerflow.services.projector import view_snapshots

    backend = state(ctx).embedded()
    backend.refresh()
    checkpoint = view_snapshots.take(backend.projector.engine, path)
    position = checkpoint.encode() or "0"
    if as_json:
        output.print_json({"path": str(path), "position": position})
        return
    output.line(f"wrote {path}: the views up to log position {position}", style="green")


@views_app.command("restore")
def restore(ctx: typer.Context, path: SnapshotPath, as_json: JsonFlag = False) -> None:
    """Start the views from the snapshot at PATH, then catch up with the log.

    The views location (LEDGERFLOW_VIEWS_DB, or views.db in the data directory) must hold
    no applied event: a new location, or views made but never fed. Stop the processes
    that use it first. The log must be the one the snapshot was taken of (or a copy).
    """
    settings = state(ctx).settings()
    position = restore_snapshot(settings, path)
    applied = state(ctx).embedded().projector.catch_up()
    if as_json:
        output.print_json({"position": position, "applied": applied})
        return
    output.line(
        f"restored the views at log position {position} from {path}; caught up with "
        f"{applied} events since",
        style="green",
    )


def restore_snapshot(settings: Settings, path: Path) -> str:
    """Copy the snapshot in as the views of `settings`, before anything opens them;
    return the log position it reflects."""
    from ledgerflow.services.bootstrap import open_event_log
    from ledgerflow.services.projector import view_snapshots

    log = open_event_log(settings)
    try:
        checkpoint = view_snapshots.restore(path, settings.views_db_url, log)
    finally:
        log.close()
    return checkpoint.encode() or "0"
