"""The fluent API: module-level functions acting on the active run, as in MLflow.

Kept light on purpose: nothing heavy is imported until the first call that
needs the backend, so `import ledgerflow` stays fast.
"""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ledgerflow.events import limits, tracing
from ledgerflow.events.errors import InvalidInput, LedgerflowError

P = ParamSpec("P")
R = TypeVar("R")

if TYPE_CHECKING:
    from ledgerflow.buffer import MetricBuffer
    from ledgerflow.client import Client
    from ledgerflow.entities import Experiment, ModelVersion, Run
    from ledgerflow.events.settings import Settings

log = logging.getLogger("ledgerflow")

_lock = threading.RLock()
_tracking_uri: str | None = None
_settings: Settings | None = None
_experiment_id: str | None = None
_buffer: MetricBuffer | None = None
_local = threading.local()
_valid_metric_keys: set[str] = set()
_last_run_id: str | None = None
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
_known_runs: set[str] = set()  # runs this process has seen active, to skip re-checking


# configuration -------------------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Where runs are recorded: a data directory (the default is ./ledgerflow-data)."""
    global _tracking_uri, _settings, _experiment_id
    text = os.fspath(uri)
    if not text.strip():
        raise InvalidInput("tracking URI must not be empty", field="tracking_uri")
    with _lock:
        _flush_quietly()
        _tracking_uri, _settings, _experiment_id = text, None, None


def get_tracking_uri() -> str:
    return _current_settings().tracking_uri


def _settings_for(uri: str | None) -> Settings:
    from ledgerflow.events.settings import load_settings

    if uri is None:
        return _current_settings()
    settings = load_settings(tracking_uri=uri)
    tracing.configure(settings.otlp_endpoint, "ledgerflow-sdk")
    return settings


def _current_settings() -> Settings:
    global _settings
    with _lock:
        if _settings is None:
            from ledgerflow.events.settings import load_settings

            _settings = load_settings(tracking_uri=_tracking_uri)
            tracing.configure(_settings.otlp_endpoint, "ledgerflow-sdk")
        return _settings


def _sdk_call(name: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A span per call; the settings are read first, since they may turn tracing on."""

    def wrap(fn: Callable[P, R]) -> Callable[P, R]:
        traced = tracing.traced(name)(fn)

        @functools.wraps(fn)
        def call(*args: P.args, **kwargs: P.kwargs) -> R:
            if _settings is None:
                _current_settings()
            return traced(*args, **kwargs)

        return call

    return wrap


def _actor(settings: Settings) -> str:
    from ledgerflow.context import current_user

    return f"user:{settings.user or current_user()}"


def _client() -> Client:
    from ledgerflow.client import Client

    return Client(_current_settings().tracking_uri)


def _metric_buffer() -> MetricBuffer:
    global _buffer
    with _lock:
        if _buffer is None:
            from ledgerflow._backend import backend_for
            from ledgerflow.buffer import MetricBuffer

            s = _current_settings()

            def sink(run_id: str, points: Sequence[tuple[str, float, int, int]]) -> None:
                if s.rank is not None:
                    points = _ranked(points, s.rank)
                with tracing.span(
                    "ledgerflow.sdk.flush_metrics", {"run_id": run_id, "points": len(points)}
                ):
                    backend_for(s).tracking.log_metric_points(run_id, points, actor=_actor(s))

            _buffer = MetricBuffer(sink, interval=s.flush_interval_s, max_points=s.flush_max_points)
        return _buffer


def _ranked(
    points: Sequence[tuple[str, float, int, int]], rank: int
) -> list[tuple[str, float, int, int]]:
    """A distributed job's worker logs `<key>/rank<N>`; rank 0 also logs the plain key,
    so charts of `loss` show one curve and every worker's curve stays apart."""
    out = [(f"{k}/rank{rank}", v, ts, step) for k, v, ts, step in points]
    return [*points, *out] if rank == 0 else out


@_sdk_call("ledgerflow.sdk.flush")
def flush() -> None:
    """Write every buffered metric point now; when this returns they survive a crash."""
    if _buffer is not None:
        _buffer.flush()


def _buffer_flush(run_id: str | None = None) -> None:
    if _buffer is not None:
        _buffer.flush(run_id)


def _flush_quietly() -> None:
    global _buffer
    if _buffer is not None:
        try:
            _buffer.flush()
        finally:
            _buffer.close()
            _buffer = None


# experiments ---------------------------------------------------------------------------
@_sdk_call("ledgerflow.sdk.set_experiment")
def set_experiment(
    experiment_name: str | None = None, experiment_id: str | None = None
) -> Experiment:
    """Make an experiment active, creating it by name if it does not exist."""
    global _experiment_id
    c = _client()
    if experiment_id is not None:
        exp = c.get_experiment(str(experiment_id))
    elif experiment_name is not None:
        limits.check_name(experiment_name, "experiment name", limits.MAX_EXPERIMENT_NAME_LENGTH)
        exp = c._backend.tracking.get_or_create_experiment(experiment_name, actor=c._actor)
    else:
        raise InvalidInput("set_experiment needs experiment_name or experiment_id")
    if exp.lifecycle_stage != "active":
        raise InvalidInput(
            f"experiment {exp.name!r} is deleted; restore it with "
            f"Client().restore_experiment({exp.experiment_id!r})"
        )
    _experiment_id = exp.experiment_id
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
    if _experiment_id is not None:
        return _experiment_id
    settings = _current_settings()
    if settings.experiment_id:
        return settings.experiment_id
    c = _client()
    if settings.experiment_name:
        return c._backend.tracking.get_or_create_experiment(
            settings.experiment_name, actor=c._actor
        ).experiment_id
    return c._backend.tracking.default_experiment(actor=c._actor).experiment_id


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
    st: list[ActiveRun] | None = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


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
    t = c._backend.tracking
    if run_id is None and not st and parent_run_id is None:
        run_id = c._settings.run_id  # LEDGERFLOW_RUN_ID: the run a job's code logs into
    if run_id is not None:
        info = t.resume_run(run_id, actor=c._actor)
        extra = dict(tags or {})
        if run_name:
            extra["mlflow.runName"] = run_name
        if extra:
            t.set_tags(run_id, extra, actor=c._actor)
        run = c.get_run(info.run_id)
    else:
        parent = parent_run_id or (st[-1].info.run_id if st and nested else None)
        all_tags = system_tags(parent)
        all_tags.update(tags or {})
        if description:
            all_tags["mlflow.note.content"] = description
        exp_id = str(experiment_id) if experiment_id is not None else _active_experiment_id()
        user = all_tags.get("mlflow.user") or c._settings.user
        info = t.create_run(
            exp_id,
            user_id=str(user),
            run_name=run_name,
            tags=all_tags,
            parent_run_id=parent,
            actor=c._actor,
        )
        run = c.get_run(info.run_id)
    active = ActiveRun(run)
    _known_runs.add(run.info.run_id)
    st.append(active)
    return active


@_sdk_call("ledgerflow.sdk.end_run")
def end_run(status: str = "FINISHED") -> None:
    """End the active run, writing its buffered metrics first."""
    st = _stack()
    if st:
        _end(st[-1].info.run_id, status)


def _end(run_id: str, status: str) -> None:
    global _last_run_id
    st = _stack()
    _last_run_id = run_id
    try:
        _buffer_flush(run_id)
        _client().set_terminated(run_id, status)
    finally:
        for i in range(len(st) - 1, -1, -1):
            if st[i].info.run_id == run_id:
                del st[i]
                break


def _run_id_for_logging() -> str:
    st = _stack()
    run = st[-1] if st else start_run()  # as in MLflow, logging with no active run starts one
    return str(run.info.run_id)


def last_active_run() -> Run | None:
    """The most recently ended run of this process (or the active one), if any."""
    active = active_run()
    rid = active.info.run_id if active else _last_run_id
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
    c = _client()
    c._backend.tracking.log_params(_run_id_for_logging(), params, actor=c._actor)


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
    elif run_id not in _known_runs:  # an explicit run: check it once, not at flush time
        c = _client()
        _known_runs.add(c._backend.tracking.active_run_info(run_id).run_id)
    buf = _buffer or _metric_buffer()
    buf.add(run_id, key, v, ts, s)


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
    c = _client()
    c._backend.tracking.set_tags(_run_id_for_logging(), tags, actor=c._actor)


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


# process exit -----------------------------------------------------------------------------
def _at_exit() -> None:
    from ledgerflow._backend import close_all

    try:
        st = _stack()
        while st:
            _end(st[-1].info.run_id, "FINISHED")
        _flush_quietly()
    except LedgerflowError as e:
        log.warning("ledgerflow: could not finish cleanly at exit: %s", e)
    finally:
        close_all()


def _reset_in_child() -> None:
    """A forked child starts with an empty metric buffer: points still buffered in the
    parent are the parent's to write, and writing them here too would duplicate them."""
    global _buffer, _lock
    _buffer = None
    _lock = threading.RLock()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_reset_in_child)
