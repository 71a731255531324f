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
from ledgerflow.services.gateway.schemas import MetricSeriesOut, SeriesPage, SeriesQuery
from ledgerflow.services.projector.series import DEFAULT_POINTS

router = APIRouter(tags=["runs"])
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
    points: Annotated[int, Query(description="at most this many buckets")] = DEFAULT_POINTS,
    x: Annotated[str, Query(description="step, or time (the points' timestamps, ms)")] = "step",
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
    found = backend.queries.get_metric_series(
        [(ref.run_id, ref.key) for ref in body.series], body.points, body.x, body.start, body.end
    )
    return SeriesPage(series=[MetricSeriesOut.model_validate(s) for s in found])
