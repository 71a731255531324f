"""Metric series for charts: ranges of metrics downsampled on the server keeping their
shape (services/projector/series.py), for one run and metric or up to 100 at once."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.commands import on
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.auth import check, checked, requires
from ledgerflow.services.gateway.deps import FreshDep, PrincipalDep
from ledgerflow.services.gateway.schemas import Axis, MetricSeriesOut, SeriesPage, SeriesQuery
from ledgerflow.services.projector.series import DEFAULT_POINTS, MAX_POINTS

router = APIRouter(tags=["runs"])
SNAPSHOT_TRIES = 3
"""Reads of the series until the projector's checkpoint stood still around one."""
_READ_RUN = on("run", "run_id", Level.READ)


@router.get(
    "/runs/{run_id}/metrics/series",
    summary="A metric's range in at most `points` buckets, keeping min and max of each",
    dependencies=[requires("run", "run_id", Level.READ)],
)
def get_metric_series(
    run_id: str,
    backend: FreshDep,
    key: Annotated[str, Query(description="the metric's name")],
    points: Annotated[
        int, Query(ge=2, le=MAX_POINTS, description="at most this many buckets")
    ] = DEFAULT_POINTS,
    x: Annotated[Axis, Query(description="step, or time (the points' timestamps, ms)")] = "step",
    start: Annotated[int | None, Query(description="first x of the range")] = None,
    end: Annotated[int | None, Query(description="last x of the range (inclusive)")] = None,
) -> MetricSeriesOut:
    (series,) = backend.queries.get_metric_series([(run_id, key)], points, x, start, end)
    return MetricSeriesOut.model_validate(series)


@router.post(
    "/metrics/series",
    summary="Several runs' and metrics' series at once (at most 100)",
    dependencies=[checked("READ on every run in series")],
)
def get_metric_series_many(
    body: SeriesQuery, backend: FreshDep, principal: PrincipalDep
) -> SeriesPage:
    for ref in body.series:
        check(backend, principal, _READ_RUN, SimpleNamespace(run_id=ref.run_id))
    refs = [(ref.run_id, ref.key) for ref in body.series]
    before = backend.projector.checkpoint()
    for attempt in range(SNAPSHOT_TRIES):
        found = backend.queries.get_metric_series(refs, body.points, body.x, body.start, body.end)
        after = backend.projector.checkpoint()
        if after == before or attempt == SNAPSHOT_TRIES - 1:
            # equal: nothing was projected meanwhile, the answer is the views at `before`;
            # else the views kept moving: following the stream from `before` (read before
            # this answer) may repeat a point or two, but never misses one
            break
        before = after
    series = [MetricSeriesOut.model_validate(s) for s in found]
    return SeriesPage(series=series, after=before.encode())
