"""Fluent queries: `lf.search_runs` as a DataFrame or Runs, and `lf.subscribe` to the log."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow import session
from ledgerflow.events.errors import InvalidInput
from ledgerflow.fluent import _active_experiment_id, _client

if TYPE_CHECKING:
    from ledgerflow.entities import Run

log = logging.getLogger("ledgerflow")


def search_runs(
    experiment_ids: Sequence[str] | None = None,
    filter_string: str = "",
    run_view_type: int | str = 1,
    max_results: int = 100_000,
    order_by: Sequence[str] | None = None,
    output_format: str = "pandas",
    experiment_names: Sequence[str] | None = None,
) -> Any:
    """Runs of the active (or given) experiments: a pandas DataFrame, or a list of Runs
    with output_format="list". Pages through all results up to max_results."""
    if output_format not in ("pandas", "list"):
        raise InvalidInput("output_format must be 'pandas' or 'list'", field="output_format")
    c = _client()
    refs = list(experiment_ids or []) + list(experiment_names or [])
    if not refs:
        refs = [_active_experiment_id()]
    runs: list[Run] = []
    token = None
    while len(runs) < max_results:
        page = c.search_runs(
            refs,
            filter_string,
            run_view_type,
            min(max_results - len(runs), 50_000),
            order_by,
            token,
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    if output_format == "list":
        return runs
    return runs_to_frame(runs)


def runs_to_frame(runs: Sequence[Run]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        raise InvalidInput(
            "output_format='pandas' needs pandas installed; pass "
            "output_format='list' for Run objects"
        ) from None
    rows = []
    for r in runs:
        i = r.info
        row: dict[str, Any] = {
            "run_id": i.run_id,
            "experiment_id": i.experiment_id,
            "status": i.status,
            "artifact_uri": i.artifact_uri,
            "start_time": pd.to_datetime(i.start_time, unit="ms", utc=True),
            "end_time": (
                pd.to_datetime(i.end_time, unit="ms", utc=True)
                if i.end_time is not None
                else pd.NaT
            ),
        }
        row.update({f"metrics.{k}": v for k, v in r.data.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.data.params.items()})
        row.update({f"tags.{k}": v for k, v in r.data.tags.items()})
        rows.append(row)
    base = ["run_id", "experiment_id", "status", "artifact_uri", "start_time", "end_time"]
    return pd.DataFrame(rows, columns=None if rows else base)


def subscribe(
    types: Sequence[str] | None = None,
    after: Any = None,
    *,
    follow: bool = True,
    stop: threading.Event | None = None,
) -> Iterator[Any]:
    """Events from the log: replay from `after` (None: the beginning; "latest": only new
    ones; a Checkpoint or its token: after it), then follow new events as they are
    appended; with follow=False, stop at the head of the log. `types` takes globs like
    "run.*". Yields `Recorded` items with `.position`, `.partition` and `.event`.

    Works the same against a gateway URL (over its event stream, reconnecting after
    dropped connections without repeating or skipping an event). Metric points this
    process buffered, and in remote mode its spool, are written first, so the
    subscription sees this process's own events."""
    from ledgerflow.events.log import CorruptRecord

    session.flush_buffer()
    for item in session.backend().log.subscribe(after, types, stop=stop, follow=follow):
        if isinstance(item, CorruptRecord):
            log.warning(
                "ledgerflow: skipping undecodable event at position %s (%s); it is "
                "in the dead-letter table",
                item.position,
                item.reason,
            )
            continue
        yield item
