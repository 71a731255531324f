"""The process session: what the fluent API and every `Client` of one process share.

The tracking URI and the settings read from it, who acts (the actor), the
active experiment, each thread's stack of active runs, the metric buffer and
its background flusher, and one backend per data location (embedded, or a
gateway's) opened on first use. At exit, active runs end and buffered points
are written before the backends close; a forked child starts with none of the
parent's buffer or connections.

`reset()` starts the session over as a new process would; tests call it
between tests. Nothing here connects at import time.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ledgerflow.events import tracing
from ledgerflow.events.errors import InvalidInput, LedgerflowError

if TYPE_CHECKING:
    from ledgerflow._ports import BackendPort
    from ledgerflow.buffer import MetricBuffer
    from ledgerflow.events.settings import Settings
    from ledgerflow.services.bootstrap import Backend
    from ledgerflow.workers.jobs import JobLauncher

log = logging.getLogger("ledgerflow")


class StackedRun(Protocol):
    """What the run stack holds: fluent's ActiveRun."""

    @property
    def info(self) -> Any: ...


_lock = threading.RLock()  # the tracking URI, settings, experiment and buffer
_tracking_uri: str | None = None
_settings: Settings | None = None
_experiment_id: str | None = None
_buffer: MetricBuffer | None = None
_local = threading.local()
_last_run_id: str | None = None
known_runs: set[str] = set()
"""Runs this process has seen active, so logging to one again skips the check."""

_backends_lock = threading.Lock()  # apart: a flush holds `_lock` and may open a backend
_backends: dict[tuple[str, ...], BackendPort] = {}
_generation = 0  # moves on whenever _backends is emptied: what a holder of one checks
_launchers: dict[tuple[int, str], JobLauncher] = {}


# settings and actor ------------------------------------------------------------------
def set_tracking_uri(uri: str | os.PathLike[str]) -> None:
    """Work against `uri` from now on; buffered points go to the previous one first."""
    global _tracking_uri, _settings, _experiment_id
    text = os.fspath(uri)
    if not text.strip():
        raise InvalidInput("tracking URI must not be empty", field="tracking_uri")
    with _lock:
        _flush_quietly()
        _tracking_uri, _settings, _experiment_id = text, None, None


def settings() -> Settings:
    """The session's settings: the tracking URI set in code, else the environment."""
    global _settings
    found = _settings
    if found is not None:
        return found
    with _lock:
        if _settings is None:
            from ledgerflow.events.settings import load_settings

            _settings = load_settings(tracking_uri=_tracking_uri)
            tracing.configure(_settings.otlp_endpoint, "ledgerflow-sdk")
        return _settings


def settings_for(uri: str | None) -> Settings:
    """The settings of `uri` (the environment's for the rest), or the session's for None."""
    from ledgerflow.events.settings import load_settings

    if uri is None:
        return settings()
    found = load_settings(tracking_uri=uri)
    tracing.configure(found.otlp_endpoint, "ledgerflow-sdk")
    return found


def actor(settings: Settings) -> str:
    """Who the events of this process are recorded as: LEDGERFLOW_USER, or the OS user."""
    from ledgerflow.context import current_user

    return f"user:{settings.user or current_user()}"


def experiment_id() -> str | None:
    """The experiment made active in code (`lf.set_experiment`), if any."""
    return _experiment_id


def set_experiment_id(experiment_id: str | None) -> None:
    global _experiment_id
    _experiment_id = experiment_id


# backends --------------------------------------------------------------------------------
def _key(settings: Settings) -> tuple[str, ...]:
    if settings.is_remote:
        from ledgerflow.remote.credentials import fingerprint

        # one per identity too: a Client given other credentials must not borrow ours
        return (settings.tracking_uri.rstrip("/"), str(settings.spool_root), fingerprint(settings))
    return (settings.event_log_url, settings.views_db_url, settings.artifacts_root)


def backend_for(settings: Settings) -> BackendPort:
    """One backend per data location per process: the embedded one (wired by
    `bootstrap`), or for an http(s):// tracking URI the remote one, which talks to a
    `ledgerflow gateway` through a write-ahead spool."""
    key = _key(settings)
    with _backends_lock:
        found = _backends.get(key)
        if found is None:
            tracing.configure(settings.otlp_endpoint, "ledgerflow-sdk")
            if settings.is_remote:
                from ledgerflow.remote import RemoteBackend

                found = _backends[key] = RemoteBackend(settings)
            else:
                from ledgerflow.services.bootstrap import bootstrap

                found = _backends[key] = bootstrap(settings, launchers=job_launcher)
        return found


def backend() -> BackendPort:
    """The backend of the session's settings."""
    return backend_for(settings())


def generation() -> int:
    """Changes whenever the backends this process holds are closed or dropped: a Client
    keeps the backend `backend_for` gave it while this stays the same, rather than
    working out its settings' key on every call."""
    return _generation


def close_all() -> None:
    """Close every backend this process opened (the next use opens them again)."""
    global _generation
    with _backends_lock:
        for b in _backends.values():
            b.close()
        _backends.clear()
        _generation += 1


def job_launcher(backend: Backend, address: str | None = None) -> JobLauncher:
    """The one launcher of jobs on `backend` through the runtime at `address`
    (LEDGERFLOW_RAY_ADDRESS when None): it watches the tasks this process submitted."""
    from ledgerflow.workers.jobs import JobLauncher

    address = address or backend.settings.ray_address
    with _backends_lock:
        key = (id(backend), address)
        found = _launchers.get(key)
        if found is None or found.backend is not backend:
            runtime = backend.runtime(address)
            found = _launchers[key] = JobLauncher(backend, runtime, runtime_name=address)
        return found


# metric buffer ---------------------------------------------------------------------------
def metric_buffer() -> MetricBuffer:
    """The buffer `lf.log_metric` adds to; its flusher writes to the session's backend."""
    global _buffer
    found = _buffer
    if found is not None:
        return found
    with _lock:
        if _buffer is None:
            from ledgerflow.buffer import MetricBuffer

            s = settings()

            def sink(run_id: str, points: Sequence[tuple[str, float, int, int]]) -> None:
                if s.rank is not None:
                    points = _ranked(points, s.rank)
                with tracing.span(
                    "ledgerflow.sdk.flush_metrics", {"run_id": run_id, "points": len(points)}
                ):
                    backend_for(s).tracking.log_metric_points(run_id, points, actor=actor(s))

            _buffer = MetricBuffer(sink, interval=s.flush_interval_s, max_points=s.flush_max_points)
        return _buffer


def _ranked(
    points: Sequence[tuple[str, float, int, int]], rank: int
) -> list[tuple[str, float, int, int]]:
    """A distributed job's worker logs `<key>/rank<N>`; rank 0 also logs the plain key,
    so charts of `loss` show one curve and every worker's curve stays apart."""
    out = [(f"{k}/rank{rank}", v, ts, step) for k, v, ts, step in points]
    return [*points, *out] if rank == 0 else out


def flush_buffer(run_id: str | None = None) -> None:
    """Write the buffered points (of `run_id`, or all) now; they are durable on return."""
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


# runs ------------------------------------------------------------------------------------
def run_stack() -> list[StackedRun]:
    """This thread's active runs, innermost last."""
    st: list[StackedRun] | None = getattr(_local, "stack", None)
    if st is None:
        st = _local.stack = []
    return st


def end_run(run_id: str, status: str) -> None:
    """End `run_id` with its buffered points written first, and take it off the stack."""
    global _last_run_id
    st = run_stack()
    _last_run_id = run_id
    try:
        flush_buffer(run_id)
        s = settings()
        backend_for(s).tracking.finish_run(run_id, status, actor=actor(s))
    finally:
        for i in range(len(st) - 1, -1, -1):
            if st[i].info.run_id == run_id:
                del st[i]
                break


def last_run_id() -> str | None:
    """The run this process ended last, if any."""
    return _last_run_id


def _finish() -> None:
    """End this thread's active runs as FINISHED and write every buffered point."""
    st = run_stack()
    while st:
        end_run(st[-1].info.run_id, "FINISHED")
    _flush_quietly()


# lifecycle -------------------------------------------------------------------------------
def reset() -> None:
    """Start the session over, as a new process would: end this thread's active runs,
    write buffered points, close every backend, and forget the tracking URI, settings,
    active experiment and job launchers. Tests call it between tests."""
    global _tracking_uri, _settings, _experiment_id, _last_run_id
    try:
        _finish()
    finally:
        close_all()
        with _lock:
            _tracking_uri = _settings = _experiment_id = _last_run_id = None
            known_runs.clear()
        with _backends_lock:
            _launchers.clear()


def _at_exit() -> None:
    try:
        _finish()
    except LedgerflowError as e:
        log.warning("ledgerflow: could not finish cleanly at exit: %s", e)
    finally:
        close_all()


def _after_fork_in_child() -> None:
    """A forked child starts with an empty metric buffer (points still buffered in the
    parent are the parent's to write; writing them here too would duplicate them) and
    without the parent's backends: their connections and spool are dropped without
    closing (closing would disturb the parent), and fresh ones open on demand (a remote
    backend gets its own spool file)."""
    global _buffer, _lock, _backends_lock, _generation
    _generation += 1
    _buffer = None
    _lock = threading.RLock()
    _backends_lock = threading.Lock()
    for b in _backends.values():
        for engine in getattr(b, "engines", ()):
            engine.dispose(close=False)
    _backends.clear()
    _launchers.clear()


atexit.register(_at_exit)
os.register_at_fork(after_in_child=_after_fork_in_child)
