"""MLflow's metric history endpoints: a run's whole history (paged), and several runs'
histories, each sampled to a few points, as MLflow's UI draws charts."""

from __future__ import annotations

import bisect
from typing import Any

from pydantic import Field

from ledgerflow.events.commands import on
from ledgerflow.events.entities import Metric
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
    offset_of,
    token_of,
)
from ledgerflow.services.gateway.mlflow_api.runs import RunRef, run_info_of

api = Endpoints("mlflow metrics")
READ_RUN = on("run", "run_id", Level.READ)
MAX_RUNS_BULK = 100
MAX_RESULTS_PER_RUN = 2500


class GetHistory(RunRef):
    metric_key: str
    max_results: int | None = Field(None, ge=1)
    page_token: str | None = None


class BulkInterval(Message):
    run_ids: list[str] = Field(min_length=1, max_length=MAX_RUNS_BULK)
    metric_key: str
    start_step: int | None = None
    end_step: int | None = None
    max_results: int = Field(MAX_RESULTS_PER_RUN, ge=1, le=MAX_RESULTS_PER_RUN)


@api.get("/metrics/get-history", needs="READ on the run")
def get_history(call: Call) -> dict[str, Any]:
    msg = call.parse(GetHistory)
    rid = msg.id
    call.check(READ_RUN, run_id=rid)
    run_info_of(call, rid)
    start = offset_of(msg.page_token)
    queries = call.fresh().queries
    if msg.max_results is None:
        points = queries.get_metric_history(rid, msg.metric_key)[start:]
    else:  # one more than asked: whether another page follows
        points = queries.get_metric_history(
            rid, msg.metric_key, start=start, limit=msg.max_results + 1
        )
    page = points if msg.max_results is None else points[: msg.max_results]
    out: dict[str, Any] = {"metrics": [messages.metric(m) for m in page]}
    if len(points) > len(page):
        end = start + len(page)
        out["next_page_token"] = token_of(end)
    return out


def sample(points: list[Metric], most: int) -> list[Metric]:
    """At most `most` of a run's points (in order of step and time) as MLflow's server
    samples them: the first point of each of `most` equal buckets (SQL's NTILE), then
    the run's last point, which takes the last place when the sample is full, so each
    line keeps its end (and its start, when `most` > 1)."""
    if len(points) <= most:
        return list(points)
    size, extra = divmod(len(points), most)
    chosen, at = [], 0
    for bucket in range(most):
        chosen.append(points[at])
        at += size + (1 if bucket < extra else 0)
    chosen[-1] = points[-1]
    return chosen


@api.get("/metrics/get-history-bulk-interval", needs="READ on every run")
def get_history_bulk_interval(call: Call) -> dict[str, Any]:
    msg = call.parse(BulkInterval)
    if (msg.start_step is None) != (msg.end_step is None):
        raise InvalidInput(
            "If either start step or end step are specified, both must be specified."
        )
    if msg.start_step is not None and msg.end_step is not None and msg.start_step > msg.end_step:
        raise InvalidInput(
            "end_step must be greater than start_step. "
            f"Found start_step={msg.start_step} and end_step={msg.end_step}."
        )
    for rid in msg.run_ids:
        call.check(READ_RUN, run_id=rid)
        run_info_of(call, rid)
    queries = call.fresh().queries
    lo, hi = msg.start_step, msg.end_step
    out: list[dict[str, Any]] = []
    for rid in msg.run_ids:
        points = queries.get_metric_history(rid, msg.metric_key)
        if lo is not None and hi is not None:
            points = points[bisect.bisect_left(points, lo, key=_step) :]
            points = points[: bisect.bisect_right(points, hi, key=_step)]
        out.extend({**messages.metric(m), "run_id": rid} for m in sample(points, msg.max_results))
    return {"metrics": out}


def _step(point: Metric) -> int:
    return point.step
