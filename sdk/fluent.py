"""The fluent API: module-level functions acting on the active run, as in MLflow.

What the calls share (settings, active experiment, run stack, metric buffer, the
backends) is the process session, `ledgerflow.session`. Kept light on purpose:
nothing heavy is imported until the first call that needs the backend, so
`import ledgerflow` stays fast.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

from ledgerflow import session
from ledgerflow.events import limits, tracing
from ledgerflow.events.errors import InvalidInput

P = ParamSpec("P")
R = TypeVar("R")

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.entities import Experiment, ModelVersion, Run

# The session's, under the names the flavors and autologging call them by.
_current_settings = session.settings
_buffer_flush = session.flush_buffer
_end = session.end_run

_valid_metric_keys: set[str] = set()
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1


# configuration -------------------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Where runs are recorded: a data directory (the default is ./ledgerflow-data)."""
    session.set_tracking_uri(uri)


def get_tracking_uri() -> str:
    return _current_settings().tracking_uri


def _sdk_call(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A span per call; the settings are read first, since they may turn tracing on."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        traced = tracing.traced(name)(fn)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            _current_settings()
            return traced(*args, **kwargs)

        return call

    return wrap


def _client() -> Client:
    from ledgerflow.client import Client

    return Client(_current_settings().tracking_uri)


@_sdk_call("ledgerflow.sdk.flush")
def flush() -> None:
    """Write every buffered metric point now; when this returns they survive a crash."""
    _buffer_flush()


# experiments ---------------------------------------------------------------------------
@_sdk_call("ledgerflow.sdk.set_experiment")
def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active, creating it by name if it does not exist."""
    c = _client()
    if experiment_id is not None:
        exp = c.get_experiment(str(experiment_id))
    elif experiment_name is not None:
        limits.check_name(experiment_name, "experiment name", limits.MAX_EXPERIMENT_NAME_LENGTH)
        exp = c._get_or_create_experiment(experiment_name)
    else:
        raise InvalidInput("set_experiment needs experiment_name or experiment_id")
    if exp.lifecycle_stage != "active":
        raise InvalidInput(
            f"experiment {exp.name!r} is deleted; restore it with "
            f"Client().restore_experiment({exp.experiment_id!r})"
        )
    session.set_experiment_id(exp.experiment_id)
    return exp


@_sdk_call("ledgerflow.sdk.create_experiment")
def create_experiment(
    name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    return _client().create_experiment(name, artifact_location, tags)


def get_experiment(experiment_id: str) -> Experiment:
    return _client().get_experiment(experiment_id)


def get_experiment_by_name(name: str) -> Experiment | None:
    return _client().get_experiment_by_name(name)


def search_experiments(**kwargs: Any) -> list[Experiment]:
    return _client().search_experiments(**kwargs)


@_sdk_call("ledgerflow.sdk.delete_experiment")
def delete_experiment(experiment_id: str) -> None:
    _client().delete_experiment(experiment_id)


def _active_experiment_id() -> str:
    """The experiment set in code, else LEDGERFLOW_EXPERIMENT_ID / _NAME, else "Default"."""
    active = session.experiment_id()
    if active is not None:
        return active
    settings = _current_settings()
    if settings.experiment_id:
        return settings.experiment_id
    c = _client()
    if settings.experiment_name:
        return c._get_or_create_experiment(settings.experiment_name).experiment_id
    return c._default_experiment().experiment_id


# runs --------------------------------------------------------------------------------
class ActiveRun:
    """The run `start_run` returned; a context manager that ends it (FAILED on exception)."""

    def __init__(self, run: Run) -> None:
        self._run = run

    @property
    def info(self) -> Any:
        return self._run.info

    @property
    def data(self) -> Any:
        return _client().get_run(self._run.info.run_id).data

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> None:
        status = (
            "FINISHED"
            if exc_type is None
            else ("KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED")
        )
        _end(self._run.info.run_id, status)

    def __repr__(self) -> str:
        return f"<ActiveRun run_id={self._run.info.run_id} name={self._run.info.run_name!r}>"


def _stack() -> list[ActiveRun]:
    return cast("list[ActiveRun]", session.run_stack())  # it holds only ActiveRuns


def active_run() -> ActiveRun | None:
    st = _stack()
    return st[-1] if st else None


@_sdk_call("ledgerflow.sdk.start_run")
def start_run(
    run_id: str | None = None,
    experiment_id: str | None = None,
    run_name: str | None = None,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
    description: str | None = None,
    parent_run_id: str | None = None,
) -> ActiveRun:
    """Start a run (or resume `run_id`) and make it active. Use it as a context manager."""
    from ledgerflow.context import system_tags

    st = _stack()
    if st and not nested:
        raise InvalidInput(
            f"run {st[-1].info.run_id} is already active; end it with lf.end_run() or start "
            "this one with nested=True"
        )
    c = _client()
    if run_id is None and not st and parent_run_id is None:
        run_id = c._settings.run_id  # LEDGERFLOW_RUN_ID: the run a job's code logs into
    if run_id is not None:
        info = c._resume_run(run_id)
        extra = dict(tags or {})
        if run_name:
            extra["mlflow.runName"] = run_name
        if extra:
            c._set_tags(run_id, extra)
        run = c.get_run(info.run_id)
    else:
        parent = parent_run_id or (st[-1].info.run_id if st and nested else None)
        all_tags = system_tags(parent)
        all_tags.update(tags or {})
        if description:
            all_tags["mlflow.note.content"] = description
        exp_id = str(experiment_id) if experiment_id is not None else _active_experiment_id()
        user = all_tags.get("mlflow.user") or c._settings.user
        run = c._new_run(
            exp_id, user_id=str(user), run_name=run_name, tags=all_tags, parent_run_id=parent
        )
    active = ActiveRun(run)
    session.known_runs.add(run.info.run_id)
    st.append(active)
    return active


@_sdk_call("ledgerflow.sdk.end_run")
def end_run(status: str = "FINISHED") -> None:
    """End the active run, writing its buffered metrics first."""
    st = _stack()
    if st:
        _end(st[-1].info.run_id, status)


def _run_id_for_logging() -> str:
    st = _stack()
    run = st[-1] if st else start_run()  # as in MLflow, logging with no active run starts one
    return str(run.info.run_id)


def last_active_run() -> Run | None:
    """The most recently ended run of this process (or the active one), if any."""
    active = active_run()
    rid = active.info.run_id if active else session.last_run_id()
    return _client().get_run(rid) if rid else None


@_sdk_call("ledgerflow.sdk.get_run")
def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)


@_sdk_call("ledgerflow.sdk.delete_run")
def delete_run(run_id: str) -> None:
    _client().delete_run(run_id)


# logging -------------------------------------------------------------------------------
@_sdk_call("ledgerflow.sdk.log_param")
def log_param(key: str, value: Any) -> Any:
    return _client().log_param(_run_id_for_logging(), key, value)


@_sdk_call("ledgerflow.sdk.log_params")
def log_params(params: Mapping[str, Any]) -> None:
    _client()._log_params(_run_id_for_logging(), params)


def log_metric(
    key: str,
    value: float,
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    """Buffer one metric point; it is written in the background, or by flush()/end_run()."""
    if type(key) is not str or key not in _valid_metric_keys:
        _valid_metric_keys.add(limits.check_key(key, "metric"))
    t = type(value)
    v = value if t is float else limits.check_metric_value(key, value)
    if step is None:
        s = 0
    elif type(step) is int and _I64_MIN <= step <= _I64_MAX:
        s = step
    else:
        s = limits.check_step(step)
    ts = time.time_ns() // 1_000_000 if timestamp is None else limits.check_timestamp(timestamp)
    if run_id is None:
        run_id = _run_id_for_logging()
    elif run_id not in session.known_runs:  # an explicit run: check it once, not at flush time
        session.known_runs.add(_client()._active_run_info(run_id).run_id)
    session.metric_buffer().add(run_id, key, v, ts, s)


def log_metrics(
    metrics: Mapping[str, float],
    step: int | None = None,
    timestamp: int | None = None,
    run_id: str | None = None,
) -> None:
    limits.check_mapping(metrics, "metrics")
    ts = time.time_ns() // 1_000_000 if timestamp is None else timestamp
    rid = run_id or _run_id_for_logging()
    for k, v in metrics.items():
        log_metric(k, v, step, ts, rid)


@_sdk_call("ledgerflow.sdk.set_tag")
def set_tag(key: str, value: Any) -> None:
    _client().set_tag(_run_id_for_logging(), key, value)


@_sdk_call("ledgerflow.sdk.set_tags")
def set_tags(tags: Mapping[str, Any]) -> None:
    _client()._set_tags(_run_id_for_logging(), tags)


@_sdk_call("ledgerflow.sdk.delete_tag")
def delete_tag(key: str) -> None:
    _client().delete_tag(_run_id_for_logging(), key)


@_sdk_call("ledgerflow.sdk.log_artifact")
def log_artifact(local_path: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    _client().log_artifact(_run_id_for_logging(), local_path, artifact_path)


@_sdk_call("ledgerflow.sdk.log_artifacts")
def log_artifacts(local_dir: str | os.PathLike[str], artifact_path: str | None = None) -> None:
    _client().log_artifacts(_run_id_for_logging(), local_dir, artifact_path)


@_sdk_call("ledgerflow.sdk.log_text")
def log_text(text: str, artifact_file: str) -> None:
    _client().log_text(_run_id_for_logging(), text, artifact_file)


@_sdk_call("ledgerflow.sdk.log_dict")
def log_dict(dictionary: Any, artifact_file: str) -> None:
    _client().log_dict(_run_id_for_logging(), dictionary, artifact_file)


@_sdk_call("ledgerflow.sdk.register_model")
def register_model(
    model_uri: str, name: str, tags: Mapping[str, Any] | None = None
) -> ModelVersion:
    """Register the model at `model_uri` (runs:/<run_id>/<path>, a path, ...) as the next
    version of `name`, creating the registered model if needed; returns that version."""
    return _client()._register_model(model_uri, name, tags)


def get_artifact_uri(artifact_path: str | None = None) -> str:
    run = _client().get_run(_run_id_for_logging())
    return run.info.artifact_uri + (f"/{artifact_path.strip('/')}" if artifact_path else "")
