"""Pure decisions for tracking commands: (current state, command) -> events, or an error.

No I/O here; the service reads the state, calls these, and appends what they return.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from ledgerflow.events import limits
from ledgerflow.events import payloads as p
from ledgerflow.events.entities import Experiment, Run, RunData, RunInfo
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound

DEFAULT_EXPERIMENT_ID = "0"
DEFAULT_EXPERIMENT_NAME = "Default"
"""The experiment runs go to when none is named, made on first use."""


def require_active_run(run: RunInfo | None, run_id: str) -> RunInfo:
    if run is None:
        raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
    if run.lifecycle_stage != "active":
        raise Conflict(f"run {run_id} is deleted; restore it before logging to it")
    return run


def require_active_experiment(exp: Experiment | None, experiment_id: str) -> Experiment:
    if exp is None:
        raise NotFound(
            f"no experiment with id {experiment_id!r}", kind="experiment", key=experiment_id
        )
    if exp.lifecycle_stage != "active":
        raise Conflict(
            f"experiment {exp.name!r} ({experiment_id}) is deleted; restore it "
            "first (Client.restore_experiment)"
        )
    return exp


def decide_create_experiment(
    existing: Experiment | None, payload: p.ExperimentCreated
) -> p.ExperimentCreated:
    if existing is not None:
        state = (
            " (deleted; restore it or pick another name)"
            if existing.lifecycle_stage == "deleted"
            else ""
        )
        raise AlreadyExists(
            f"an experiment named {payload.name!r} already exists with id "
            f"{existing.experiment_id}{state}"
        )
    return payload


def run_tags(
    tags: Mapping[str, Any], run_name: str | None, parent_run_id: str | None, fallback_name: str
) -> dict[str, str]:
    """The tags a run starts with: `tags` checked, `mlflow.runName` (the name given, else
    the tag, else `fallback_name`) and `mlflow.parentRunId`. The remote SDK works out the
    same tags for a run it starts while the gateway is down."""
    all_tags = clean_tags(tags)
    name = run_name or all_tags.get("mlflow.runName") or fallback_name
    all_tags["mlflow.runName"] = limits.check_name(name, "run name", limits.MAX_RUN_NAME_LENGTH)
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    return all_tags


def started_info(started: p.RunStarted) -> RunInfo:
    """The run a start makes, as the views hold it once projected (`run_started`)."""
    return RunInfo(
        run_id=started.run_id,
        experiment_id=started.experiment_id,
        run_name=started.run_name,
        user_id=started.user_id,
        status="RUNNING",
        start_time=started.start_time,
        end_time=None,
        artifact_uri=started.artifact_uri,
        lifecycle_stage="active",
    )


def new_run(info: RunInfo, tags: Mapping[str, Any], parent_run_id: str | None) -> Run:
    """A run just started from these tags, as the views hold it: no params or metrics
    yet, and the tags its start worked out (`run_tags`, named as `info` says)."""
    return Run(info, RunData(tags=run_tags(tags, info.run_name, parent_run_id, info.run_name)))


def decide_start_run(
    existing: Run | None, started: p.RunStarted, *, start_time_given: bool = True
) -> p.RunStarted | None:
    """Starting a run whose id the caller chose. None when that run already exists as
    asked (the same experiment, user, parent and, when given, start time): the same start
    sent again, after its answer was lost or from a spool shipped twice. Another run with
    that id is AlreadyExists."""
    if existing is None:
        return started
    info = existing.info
    same = (
        info.experiment_id == started.experiment_id
        and info.user_id == started.user_id
        and existing.data.tags.get("mlflow.parentRunId") == started.parent_run_id
        and (info.start_time == started.start_time or not start_time_given)
    )
    if same:
        return None
    raise AlreadyExists(
        f"run {started.run_id} already exists (experiment {info.experiment_id}, user "
        f"{info.user_id!r}, started at {info.start_time}); starting it again takes the same "
        "experiment, user, parent and start time, or choose another run_id"
    )


def decide_log_params(
    run_id: str, stored: Mapping[str, str], new: Mapping[str, str]
) -> p.RunParamsLogged | None:
    """Params are immutable: the same value again is a no-op, a different one an error."""
    for key, value in new.items():
        old = stored.get(key)
        if old is not None and old != value:
            raise Conflict(
                f"param {key!r} of run {run_id} is already {old!r}; params cannot change "
                f"(tried {value!r}). Log it under another name or start a new run."
            )
    fresh = {k: v for k, v in new.items() if k not in stored}
    return p.RunParamsLogged(run_id=run_id, params=fresh) if fresh else None


POINTS_PER_EVENT = 5_000
"""Metric points per `run.metrics_logged` event: a long list becomes several events."""


def metrics_logged(
    run_id: str, points: Sequence[p.MetricPoint], batch: int = POINTS_PER_EVENT
) -> list[p.RunMetricsLogged]:
    """Points already checked (`clean_metrics`), as events of at most `batch` points."""
    return [
        p.RunMetricsLogged.model_construct(run_id=run_id, points=tuple(points[i : i + batch]))
        for i in range(0, len(points), batch)
    ]


def decide_log_batch(
    run_id: str,
    stored_params: Mapping[str, str],
    params: Mapping[str, str],
    points: Sequence[p.MetricPoint],
    tags: Mapping[str, str],
) -> list[p.Payload]:
    """A batch's events, from params, points and tags already cleaned: all of them, or an
    error (a param that would change) and none."""
    logged = decide_log_params(run_id, stored_params, params) if params else None
    events: list[p.Payload] = [] if logged is None else [logged]
    events += metrics_logged(run_id, points)
    if tags:
        events.append(p.RunTagsSet(run_id=run_id, tags=dict(tags)))
    return events


def check_end_status(status: str) -> p.RunStatus:
    if status in p.TERMINAL_STATUSES:
        return cast(p.RunStatus, status)
    raise InvalidInput(f"a run ends as FINISHED, FAILED or KILLED, not {status!r}", field="status")


def decide_finish(run: RunInfo, status: str, end_time: int) -> p.RunFinished:
    return p.RunFinished(run_id=run.run_id, status=check_end_status(status), end_time=end_time)


_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


def clean_tags(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags checked against the limits, values as strings."""
    tags = limits.check_mapping(tags, "tags")
    return {
        limits.check_key(k, "tag"): limits.check_value(v, "tag", k, limits.MAX_TAG_VALUE_LENGTH)
        for k, v in tags.items()
    }


def clean_params(params: Mapping[str, Any]) -> dict[str, str]:
    """Params checked against the limits, values as strings."""
    return {
        limits.check_key(k, "param"): limits.check_value(
            v, "param", k, limits.MAX_PARAM_VALUE_LENGTH
        )
        for k, v in limits.check_mapping(params, "params").items()
    }


def clean_metrics(metrics: Iterable[tuple[str, Any, Any, Any]]) -> list[p.MetricPoint]:
    """(key, value, timestamp, step) tuples checked against the limits."""
    pts: list[p.MetricPoint] = []
    keys: set[str] = set()
    for k, v, ts, st in metrics:
        if not isinstance(k, str) or k not in keys:  # each distinct key checked once
            keys.add(limits.check_key(k, "metric"))
        pts.append(
            (
                k,
                v if type(v) is float else limits.check_metric_value(k, v),
                ts if type(ts) is int else limits.check_timestamp(ts),
                st if type(st) is int and _I64_MIN <= st <= _I64_MAX else limits.check_step(st),
            )
        )
    return pts


def decide_delete_experiment_tag(exp: Experiment, key: str) -> p.ExperimentTagDeleted:
    if key not in exp.tags:
        raise NotFound(f"experiment {exp.experiment_id} has no tag {key!r}", kind="tag", key=key)
    return p.ExperimentTagDeleted(experiment_id=exp.experiment_id, key=key)


def decide_delete_tag(run_id: str, tags: Mapping[str, str], key: str) -> p.RunTagDeleted:
    if key not in tags:
        raise NotFound(f"run {run_id} has no tag {key!r}", kind="tag", key=key)
    return p.RunTagDeleted(run_id=run_id, key=key)
