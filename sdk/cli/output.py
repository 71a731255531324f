"""How the CLI prints: rich tables for people, JSON for scripts, one-line errors on stderr.

In `--json` mode a command writes exactly one JSON document (or, for streams,
one object per line) on stdout and nothing else there; anything else goes to
stderr. Non-finite floats travel as the strings "NaN", "Infinity" and
"-Infinity", as they do on the event log, so the output stays standard JSON.
"""

from __future__ import annotations

import json
import math
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print JSON on stdout (and nothing else) instead of tables.")
]

_PIPE_WIDTH = 200
"""Width of human output written to a pipe or file, so ids are not cut to fit 80 columns."""


@cache
def console() -> Console:
    from rich.console import Console

    c = Console(highlight=False)
    if not c.is_terminal and "COLUMNS" not in os.environ:
        c = Console(highlight=False, width=_PIPE_WIDTH)
    return c


@cache
def err_console() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def error(message: str) -> None:
    """Print `Error: <message>` in red on stderr, on one line whatever the message holds."""
    from rich.text import Text

    line = " ".join(message.split())
    err_console().print(Text(f"Error: {line}", style="red"), soft_wrap=True)


def note(message: str) -> None:
    """A remark for people (hints, summaries) on stderr, where it never spoils piped output."""
    from rich.text import Text

    err_console().print(Text(message, style="dim"), soft_wrap=True)


def line(text: str, style: str | None = None) -> None:
    """One plain line on stdout, never wrapped or interpreted as markup."""
    from rich.text import Text

    console().print(Text(text, style=style or ""), soft_wrap=True)


# JSON ----------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """Plain JSON values from dataclasses, named tuples, mappings, sequences, non-finite floats."""
    if is_dataclass(value) and not isinstance(value, type):
        return jsonable(asdict(value))
    if isinstance(value, tuple) and hasattr(value, "_asdict"):  # named tuples, e.g. Metric
        return jsonable(value._asdict())
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return value
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def print_json(doc: Any) -> None:
    """The whole answer as one indented JSON document on stdout."""
    sys.stdout.write(json.dumps(jsonable(doc), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def print_json_line(doc: Any) -> None:
    """One compact JSON object on its own line (JSON Lines), flushed at once for followers."""
    sys.stdout.write(json.dumps(jsonable(doc), separators=(",", ":"), allow_nan=False) + "\n")
    sys.stdout.flush()


# tables --------------------------------------------------------------------------------
def table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    title: str | None = None,
    no_wrap: Sequence[str] = (),
) -> None:
    """A rich table on stdout. Cells are shown literally (never as rich markup)."""
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, title_justify="left", header_style="bold")
    for name in columns:
        t.add_column(name, no_wrap=name in no_wrap, overflow="fold")
    for row in rows:
        t.add_row(*(Text(cell_text(v)) for v in row))
    console().print(t)


def key_values(pairs: Mapping[str, Any], columns: tuple[str, str]) -> None:
    """A two-column table of names and values, or a dim 'no …' line when empty."""
    if not pairs:
        line(f"no {columns[0]}s", style="dim")
        return
    table(columns, sorted(pairs.items()))


def cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return format_number(value)
    return str(value)


def format_number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.6g}"


def format_time(epoch_ms: int | None) -> str:
    """Local wall-clock time of an epoch-milliseconds timestamp, to the second."""
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def format_time_ms(epoch_ms: int | None) -> str:
    if epoch_ms is None:
        return ""
    return datetime.fromtimestamp(epoch_ms / 1000).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def format_duration(start_ms: int | None, end_ms: int | None) -> str:
    if start_ms is None or end_ms is None:
        return ""
    seconds = max(0, end_ms - start_ms) / 1000
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def inline(pairs: Mapping[str, Any], limit: int = 6) -> str:
    """`a=1, b=2` for a table cell, with a count of what did not fit."""
    items = sorted(pairs.items())
    text = ", ".join(f"{k}={cell_text(v)}" for k, v in items[:limit])
    if len(items) > limit:
        text += f", … (+{len(items) - limit})"
    return text


def shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
