"""`ledgerflow audit`: who did what, when, through which token, and what a change replaced."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow.events.audit_entities import AuditEntry

_WHEN = (
    "epoch ms, an ISO-8601 date or time (local time without a zone: 2026-12-03, "
    "2026-12-03T14:00), or a time ago: 30m, 1h, 2d, 1w"
)


def _local(value: str | None) -> Any:
    """An ISO date or time without a zone means local time here (the table prints local
    times); anything else goes as typed (epoch ms, `1h`, a zoned time)."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return value
    return parsed.astimezone() if parsed.tzinfo is None else parsed


def _value(value: Any) -> str:
    if value is None:
        return "(none)"
    if value == "":
        return '""'
    if isinstance(value, dict):
        return "{" + output.inline(value, limit=8) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(output.cell_text(v) for v in value) + "]"
    return output.cell_text(value)


def change_text(entry: AuditEntry) -> str:
    """`version: 2 → 3` for each field a change replaced; else the entry's summary."""
    if entry.before is None and entry.after is None:
        return entry.summary
    before, after = entry.before or {}, entry.after or {}
    keys = [*before, *(k for k in after if k not in before)]
    return "; ".join(f"{k}: {_value(before.get(k))} → {_value(after.get(k))}" for k in keys)


def audit(
    ctx: typer.Context,
    entity: Annotated[
        str | None,
        typer.Option(
            "--entity",
            "-e",
            help="A stream or resource: model:digits-cnn, deployment:web, experiment:1 (with "
            "its runs), run:RUN_ID, user:alice; * globs.",
        ),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", "-a", help="The user who acted; * globs.")
    ] = None,
    type_: Annotated[
        str | None,
        typer.Option("--type", "-t", help="The event type, e.g. 'deployment.*' or auth.denied."),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", "-s", help=f"From: {_WHEN}.")] = None,
    until: Annotated[str | None, typer.Option("--until", help=f"Before: {_WHEN}.")] = None,
    token: Annotated[
        str | None, typer.Option("--token", help="Only what this API token (its id) did.")
    ] = None,
    max_results: Annotated[
        int, typer.Option("--max-results", "-n", min=1, max=1000, help="At most this many.")
    ] = 50,
    page_token: Annotated[
        str | None,
        typer.Option("--page-token", help="Go on from the token a previous page printed."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """The audit trail, newest first: who did what, when, through which token, on what,
    and for a change that replaces a value (an alias moved, a stage, a grant, traffic)
    the value before and after. Refused requests show as auth.denied.

    Against a gateway, only what the caller may see. Metric batches show as one entry per
    run, identity and minute.
    """
    page = state(ctx).client().audit(
        entity=entity, actor=actor, since=_local(since), type=type_, max_results=max_results,
        until=_local(until), token=token, page_token=page_token,
    )  # fmt: skip
    if as_json:
        output.print_json({"entries": list(page), "next_page_token": page.token})
        return
    rows = [
        (output.format_time(e.time), e.actor, e.token_id or "", e.type, e.stream, change_text(e))
        for e in page
    ]
    if not rows:
        output.note("no audit entries match")
    else:
        columns = ["time", "actor", "token", "type", "entity", "change"]
        output.table(columns, rows, no_wrap=["time"])
    if page.token:
        output.note(f"more: --page-token {page.token}")
