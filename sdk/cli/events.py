"""`ledgerflow events …`: read and follow the event log itself."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Generator, Sequence
from contextlib import closing
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ledgerflow.cli import output
from ledgerflow.cli.context import state
from ledgerflow.cli.output import JsonFlag

if TYPE_CHECKING:
    from ledgerflow._ports import SubscribePort
    from ledgerflow.events.log import Checkpoint, Item

app = typer.Typer(help="Read and follow the event log.", no_args_is_help=True)


@app.command("tail")
def tail(
    ctx: typer.Context,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing new events as they are appended, until Ctrl-C."
        ),
    ] = False,
    types: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            help="Only events whose type matches this glob, e.g. 'run.*'; repeat for several.",
        ),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(
            "--after",
            help="Start after this checkpoint: a position on the SQLite log, or the "
            "PARTITION=N,... token a Kafka log prints (default: the beginning).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit", "-n", min=1, help="Only the last N of the events already on the log."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print events from the log, and with --follow the new ones as they come.

    Without --follow: from the beginning (or --after) up to the head, or the last --limit.

    --json: one JSON object per line (position, id, type, stream, time, actor, data).

    Undecodable events are shown as corrupt, never skipped.
    """
    from ledgerflow.events.log import Checkpoint

    start = Checkpoint.parse(after) if after is not None else None
    log = state(ctx).backend(catch_up=False).log  # a data directory's log, or a gateway's
    show = _print_json if as_json else _print_human
    with closing(_items(log, start, types or None, follow, limit)) as items:
        try:
            for item in items:
                show(item)
        except KeyboardInterrupt:
            return


def _items(
    log: SubscribePort,
    after: Checkpoint | None,
    types: Sequence[str] | None,
    follow: bool,
    limit: int | None,
) -> Generator[Item, None, None]:
    if limit is None:
        yield from log.subscribe(after, types, follow=follow)
        return
    head = log.head()
    last: deque[Item] = deque(maxlen=limit)
    if head:
        for item in log.subscribe(after, types, follow=False):
            if head.includes(item):  # later ones were appended since; the follow prints them
                last.append(item)
    yield from last
    if follow:
        yield from log.subscribe(head.union(after) if after else head, types, follow=True)


def as_document(item: Item) -> dict[str, Any]:
    """An event as plain JSON values; a corrupt one carries its raw data and the reason."""
    from ledgerflow.events.codec import encode_data
    from ledgerflow.events.log import CorruptRecord

    if isinstance(item, CorruptRecord):
        return {
            "position": item.position,
            "partition": item.partition,
            "id": item.id,
            "type": item.type,
            "stream": item.stream,
            "time": None,
            "actor": None,
            "data": item.data,
            "corrupt": True,
            "reason": item.reason,
        }
    ev = item.event
    return {
        "position": item.position,
        "partition": item.partition,
        "id": ev.id,
        "type": ev.type,
        "stream": ev.stream,
        "time": ev.time,
        "v": ev.v,
        "actor": ev.actor,
        "trace": ev.trace,
        "data": json.loads(encode_data(ev.data)),
        "corrupt": False,
    }


def _print_json(item: Item) -> None:
    output.print_json_line(as_document(item))


def _print_human(item: Item) -> None:
    from rich.text import Text

    doc = as_document(item)
    text = Text()
    text.append(f"{doc['position']:>8}  ", style="cyan")
    if doc["corrupt"]:
        text.append("CORRUPT", style="bold red")
        text.append(f"  {doc['type']}  {doc['stream']}  id={doc['id']}  ")
        text.append(doc["reason"], style="red")
        text.append(f"  data={output.shorten(doc['data'])}", style="dim")
    else:
        text.append(f"{output.format_time_ms(doc['time'])}  ", style="dim")
        text.append(f"{doc['type']:<24}", style="bold")
        text.append(f"  {doc['stream']}  {doc['actor']}  ")
        text.append(output.shorten(json.dumps(doc["data"], separators=(",", ":"))), style="dim")
    output.console().print(text, soft_wrap=True)
