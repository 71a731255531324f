"""`ledgerflow verify`: check the event log's hash chain (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.log import EventLog
    from ledgerflow.events.verify import Report

SHOWN_PROBLEMS = 20


def verify(
    ctx: typer.Context,
    log_url: Annotated[
        str | None,
        typer.Option(
            "--log",
            help="The event log to check: sqlite:///FILE or kafka://HOST:PORT[,HOST:PORT] "
            "(default: LEDGERFLOW_EVENT_LOG, else the data directory's log).",
        ),
    ] = None,
    expect_head: Annotated[
        list[str] | None,
        typer.Option(
            "--expect-head",
            help="An anchor an earlier run printed, [PARTITION@]POSITION:DIGEST: fail unless "
            "the log up to that position is still exactly what it was. Repeatable.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Walk the whole event log and check that no event was altered, dropped or reordered.

    Every event carries a hash chained to the previous event of its stream.
    This reads every event once (a million in well under 30 s on SQLite) and
    prints how many it checked, any events from before the chain, and one
    anchor per partition: a digest of the log up to its last position.

    Keep the anchors where the log's writers cannot reach them; --expect-head
    checks one later, which also catches a rewrite that re-computed the chain.

    Exits 1 naming the first bad event: its position, id, stream and what
    happened to it.
    """
    from ledgerflow.events.verify import Anchor
    from ledgerflow.events.verify import verify as walk

    anchors = [Anchor.parse(token) for token in expect_head or []]
    with closing(_open_log(ctx, log_url)) as log:
        report = _with_progress(log, lambda progress: walk(log, anchors, progress=progress))
    if as_json:
        output.print_json(report.as_json())
    else:
        _print(report)
    if not report.ok:
        first = report.first
        output.error(
            f"the event log failed verification ({report.problem_count} "
            f"problem{'s' if report.problem_count != 1 else ''})"
            + (f"; the first: {first.describe()}" if first else "")
        )
        raise typer.Exit(1)


def _open_log(ctx: typer.Context, log_url: str | None) -> EventLog:
    from ledgerflow.events.errors import InvalidInput, NotFound
    from ledgerflow.events.settings import load_settings
    from ledgerflow.services.bootstrap import open_event_log

    settings = load_settings(tracking_uri=state(ctx).tracking_uri, event_log=log_url)
    if settings.event_log is None and settings.is_remote:
        raise InvalidInput(
            f"{settings.tracking_uri} is a gateway; verify reads the event log itself: run it "
            "where the log is, with --log sqlite:///FILE or --log kafka://HOST:PORT",
            field="--log",
        )
    url = settings.event_log_url
    if url.startswith("sqlite:///") and not Path(url[len("sqlite:///") :]).is_file():
        raise NotFound(
            f"no event log at {url[len('sqlite:///') :]}; name one with --log or --tracking-uri"
        )
    return open_event_log(settings)


def _with_progress(log: EventLog, run: Callable[[Callable[[int], None]], Report]) -> Report:
    """Run the walk with a progress bar on stderr when it is a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("verifying"),
        BarColumn(),
        MofNCompleteColumn(),
        console=output.err_console(),
        transient=True,
        disable=not output.err_console().is_terminal,
    ) as bar:
        task = bar.add_task("verify", total=log.head().total() or None)
        return run(lambda checked: bar.update(task, completed=checked))


def _print(report: Report) -> None:
    streams = f"{report.streams:,} stream{'s' if report.streams != 1 else ''}"
    if report.ok:
        anchors = f"; {report.anchors_checked} anchor(s) match" if report.anchors_checked else ""
        output.line(
            f"checked {report.checked:,} events in {streams}: none altered, dropped or "
            f"reordered{anchors}",
            style="green",
        )
    else:
        output.line(
            f"checked {report.checked:,} events in {streams}: {report.problem_count:,} "
            "problem(s), in log order:",
            style="red",
        )
        for problem in report.problems[:SHOWN_PROBLEMS]:
            output.line(f"  {problem.describe()}", style="red")
        if report.problem_count > SHOWN_PROBLEMS:
            output.line(f"  ... and {report.problem_count - SHOWN_PROBLEMS:,} more (see --json)")
    for part in report.partitions.values():
        name = f"partition {part.name}: " if part.name else ""
        if part.legacy:
            start = (
                f"the chain starts at position {part.first_chained}"
                if part.first_chained is not None
                else "no event here has a hash yet"
            )
            output.line(
                f"{name}{part.legacy:,} event(s) were written before events carried a hash "
                f"and are not protected; {start}",
                style="yellow",
            )
        if part.trimmed_from is not None:
            output.line(
                f"{name}begins at position {part.trimmed_from} (retention deleted what came "
                f"before); {part.continued:,} stream(s) continue from there unchecked",
                style="yellow",
            )
        if part.forks or part.duplicates:
            output.note(
                f"{name}{part.forks:,} event(s) chained onto an earlier event of their stream "
                f"because another appender got in first, {part.duplicates:,} duplicate(s)"
            )
        anchor = part.anchor()
        if anchor is not None:
            output.line(f"anchor {anchor.encode()}")
    if report.ok and report.partitions:
        output.note(
            "keep the anchor(s) where the log's writers cannot reach them; "
            "check them later with --expect-head"
        )
