"""MLflow's metric history endpoints: a run's whole history (paged), and several runs'
histories sampled by step, as MLflow's UI draws charts."""

from __future__ import annotations

import base64
import binascii
import bisect
from typing import Any

from pydantic import Field

from ledgerflow.events.commands import on
from ledgerflow.events.entities import Metric
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.permissions import Level
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.endpoints import Call, Endpoints, Message
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


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise InvalidInput(f"invalid page_token {token!r}", field="page_token") from None


@api.get("/metrics/get-history", needs="READ on the run")
def get_history(call: Call) -> dict[str, Any]:
    msg = call.parse(GetHistory)
    rid = msg.id
    call.check(READ_RUN, run_id=rid)
    run_info_of(call, rid)
    points = call.fresh().queries.get_metric_history(rid, msg.metric_key)
    start = _offset(msg.page_token)
    end = len(points) if msg.max_results is None else start + msg.max_results
    out: dict[str, Any] = {"metrics": [messages.metric(m) for m in points[start:end]]}
    if end < len(points):
        out["next_page_token"] = base64.urlsafe_b64encode(str(end).encode()).decode()
    return out


def sampled_steps(
    histories: list[list[Metric]], max_results: int, start: int | None, end: int | None
) -> set[int]:
    """MLflow's sample: at most `max_results` steps evenly over the steps any run logged in
    [start, end], plus each run's first and last step in it, so every line keeps its ends."""
    steps = sorted({m.step for h in histories for m in h})
    lo = 0 if start is None else start
    hi = (steps[-1] if steps else 0) if end is None else end
    ends = {s for h in histories if h for s in (h[0].step, h[-1].step) if lo <= s <= hi}
    first, last = bisect.bisect_left(steps, lo), bisect.bisect_right(steps, hi)
    if last - first <= max_results:
        chosen = set(steps[first:last])
    else:
        interval = (last - first) / max_results
        chosen = {steps[first + int(i * interval)] for i in range(max_results)}
        chosen.add(steps[last - 1])
    return chosen | ends


def _evenly(count: int, most: int) -> list[int]:
    if count <= most:
        return list(range(count))
    return sorted({round(i * (count - 1) / (most - 1)) for i in range(most)}) if most > 1 else [0]


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
    histories = [queries.get_metric_history(rid, msg.metric_key) for rid in msg.run_ids]
    steps = sampled_steps(histories, msg.max_results, msg.start_step, msg.end_step)
    out: list[dict[str, Any]] = []
    for rid, history in zip(msg.run_ids, histories, strict=True):
        kept = [m for m in history if m.step in steps]
        for i in _evenly(len(kept), max(msg.max_results, len(steps))):
            out.append({**messages.metric(kept[i]), "run_id": rid})
    return {"metrics": out}
