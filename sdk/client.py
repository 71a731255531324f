"""`lf.Client`: the explicit API, named as MLflow's `MlflowClient`.

Every method takes ids rather than relying on an active run, and writes
synchronously: when a method returns, what it wrote is durable and visible.
A Client works on the process session's backend for its tracking URI, or on the
backend it is given (`Client(backend=...)`: tests, servers).
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow import session
from ledgerflow._audit_methods import AuditMethods
from ledgerflow._auth_methods import AuthMethods
from ledgerflow._bundle_methods import BundleMethods
from ledgerflow._deployment_methods import DeploymentMethods
from ledgerflow._webhook_methods import WebhookMethods
from ledgerflow.entities import (
    Experiment,
    FileInfo,
    Metric,
    MetricSeries,
    PagedList,
    Param,
    Run,
    RunTag,
    ViewType,
)
from ledgerflow.events.as_of import AsOf
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import InvalidInput
from ledgerflow.registry import RegistryMethods

if TYPE_CHECKING:
    from datetime import datetime

    from ledgerflow._ports import BackendPort, QueriesPort
    from ledgerflow.entities import RunInfo
    from ledgerflow.events.log import Checkpoint
    from ledgerflow.events.settings import Settings


class Client(
    RegistryMethods, DeploymentMethods, WebhookMethods, BundleMethods, AuthMethods, AuditMethods
):
    def __init__(
        self,
        tracking_uri: str | None = None,
        *,
        backend: BackendPort | None = None,
        as_of: AsOf | Checkpoint | datetime | int | str | None = None,
    ):
        """Work where `tracking_uri` says (the session's tracking URI when None), or on
        `backend` when one is given (its settings say where).

        With `as_of` (a log position such as `/api/v1/events/head` gives, or a time:
        ISO-8601, epoch milliseconds or a datetime), every read shows the views as they
        were then, and every command is refused (docs/time-travel.md). A time is resolved
        to a log position on first use, so the Client's answers never change after that.
        """
        if backend is not None and tracking_uri is not None:
            raise InvalidInput(
                "give Client a tracking_uri or a backend, not both", field="tracking_uri"
            )
        self._own_backend = backend
        self._held: tuple[int, BackendPort] | None = None
        self._settings: Settings = (
            backend.settings if backend is not None else session.settings_for(tracking_uri)
        )
        self._as_of = None if as_of is None else AsOf.parse(as_of)
        self._past: BackendPort | None = None
        self._past_lock = threading.Lock()
        if backend is None and self._settings.is_remote:
            # Ready now (no network yet), so that a training script's first logging call
            # costs what the others do rather than the remote client's imports and set-up.
            session.backend_for(self._settings)

    @property
    def tracking_uri(self) -> str:
        return self._settings.tracking_uri

    @property
    def _backend(self) -> BackendPort:
        own = self._own_backend
        present = own if own is not None else self._session_backend()
        if self._as_of is None:
            return present
        with self._past_lock:
            if self._past is None:
                self._past = present.as_of(self._as_of)
            return self._past

    def _session_backend(self) -> BackendPort:
        """The session's backend for this Client's settings, looked up again only once
        the session closed or dropped its backends."""
        held = self._held
        if held is None or held[0] != session.generation():
            held = self._held = (session.generation(), session.backend_for(self._settings))
        return held[1]

    @property
    def _queries(self) -> QueriesPort:
        """The read side, brought up to the head of the log first."""
        b = self._backend
        b.refresh()
        return b.queries

    @property
    def _actor(self) -> str:
        return session.actor(self._settings)

    # experiments -----------------------------------------------------------------
    def create_experiment(
        self, name: str, artifact_location: str | None = None, tags: Mapping[str, Any] | None = None
    ) -> str:
        from ledgerflow.events import tracking_commands as tc

        command = tc.CreateExperiment(name=name, artifact_location=artifact_location, tags=tags)
        return self._backend.tracking.execute(command, actor=self._actor)

    def get_experiment(self, experiment_id: str) -> Experiment:
        return self._queries.get_experiment(str(experiment_id))

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        return self._queries.get_experiment_by_name(name)

    def _get_or_create_experiment(self, name: str) -> Experiment:
        return self._backend.tracking.get_or_create_experiment(name, actor=self._actor)

    def _default_experiment(self) -> Experiment:
        """The "Default" experiment, created on first use."""
        return self._backend.tracking.default_experiment(actor=self._actor)

    def search_experiments(
        self,
        view_type: int | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        filter_string: str | None = None,
        order_by: Sequence[str] | None = None,
    ) -> list[Experiment]:
        return self._queries.search_experiments(view_type, max_results, filter_string, order_by)

    def rename_experiment(self, experiment_id: str, new_name: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        command = tc.RenameExperiment(experiment_id=str(experiment_id), name=new_name)
        self._backend.tracking.execute(command, actor=self._actor)

    def delete_experiment(self, experiment_id: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        command = tc.DeleteExperiment(experiment_id=str(experiment_id))
        self._backend.tracking.execute(command, actor=self._actor)

    def restore_experiment(self, experiment_id: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        command = tc.RestoreExperiment(experiment_id=str(experiment_id))
        self._backend.tracking.execute(command, actor=self._actor)

    def set_experiment_tag(self, experiment_id: str, key: str, value: Any) -> None:
        from ledgerflow.events import tracking_commands as tc

        command = tc.SetExperimentTag(experiment_id=str(experiment_id), key=key, value=value)
        self._backend.tracking.execute(command, actor=self._actor)

    def delete_experiment_tag(self, experiment_id: str, key: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        command = tc.DeleteExperimentTag(experiment_id=str(experiment_id), key=key)
        self._backend.tracking.execute(command, actor=self._actor)

    # runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        run_name: str | None = None,
    ) -> Run:
        from ledgerflow.context import current_user

        user = (tags or {}).get("mlflow.user") or self._settings.user or current_user()
        return self._new_run(
            str(experiment_id),
            user_id=str(user),
            run_name=run_name,
            start_time=start_time,
            tags=tags,
            parent_run_id=(tags or {}).get("mlflow.parentRunId"),
        )

    def _new_run(
        self,
        experiment_id: str,
        *,
        user_id: str,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        info = self._backend.tracking.create_run(
            experiment_id,
            user_id=user_id,
            run_name=run_name,
            start_time=start_time,
            tags=tags,
            actor=self._actor,
            parent_run_id=parent_run_id,
        )
        from ledgerflow.services.tracking.decide import new_run

        return new_run(info, tags or {}, parent_run_id)  # nothing else to read back

    def _resume_run(self, run_id: str) -> RunInfo:
        """Make an ended run active again (a job's code logs into the run made for it)."""
        return self._backend.tracking.resume_run(run_id, actor=self._actor)

    def _active_run_info(self, run_id: str) -> RunInfo:
        """The run's info, or InvalidInput/NotFound when it cannot be logged to."""
        return self._backend.tracking.active_run_info(run_id)

    def get_run(self, run_id: str) -> Run:
        return self._queries.get_run(run_id)

    def search_runs(
        self,
        experiment_ids: str | Sequence[str],
        filter_string: str = "",
        run_view_type: int | str = ViewType.ACTIVE_ONLY,
        max_results: int = 1000,
        order_by: Sequence[str] | None = None,
        page_token: str | None = None,
    ) -> PagedList[Run]:
        """Runs matching the filter. Experiments may be given by id or by name."""
        refs = [experiment_ids] if isinstance(experiment_ids, str) else experiment_ids
        return self._queries.search_runs(
            [str(r) for r in refs], filter_string, run_view_type, max_results, order_by,
            page_token, by_name=True,
        )  # fmt: skip

    def log_param(self, run_id: str, key: str, value: Any) -> Any:
        self._log_params(run_id, {key: value})
        return value

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self._backend.tracking.log_params(run_id, params, actor=self._actor)

    def log_metric(
        self,
        run_id: str,
        key: str,
        value: float,
        timestamp: int | None = None,
        step: int | None = None,
    ) -> None:
        self._backend.tracking.log_metrics(
            run_id,
            [(key, value, now_ms() if timestamp is None else timestamp, step or 0)],
            actor=self._actor,
        )

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric | Any] = (),
        params: Sequence[Param | Any] = (),
        tags: Sequence[RunTag | Any] = (),
    ) -> None:
        """Params, metrics and tags as one command: all logged, or none when any is refused."""
        self._backend.tracking.log_batch(
            run_id,
            [_metric_tuple(m) for m in metrics],
            dict(_kv(x) for x in params),
            dict(_kv(x) for x in tags),
            actor=self._actor,
        )

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self._set_tags(run_id, {key: value})

    def _set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self._backend.tracking.set_tags(run_id, tags, actor=self._actor)

    def delete_tag(self, run_id: str, key: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        self._backend.tracking.execute(tc.DeleteTag(run_id=run_id, key=key), actor=self._actor)

    def update_run(self, run_id: str, status: str | None = None, name: str | None = None) -> None:
        if name is not None:
            self.set_tag(run_id, "mlflow.runName", name)
        if status is not None:
            self.set_terminated(run_id, status)

    def set_terminated(
        self, run_id: str, status: str | None = None, end_time: int | None = None
    ) -> None:
        session.flush_buffer(run_id)  # the points this process buffered for it come first
        self._backend.tracking.finish_run(run_id, status or "FINISHED", end_time, actor=self._actor)

    def delete_run(self, run_id: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        self._backend.tracking.execute(tc.DeleteRun(run_id=run_id), actor=self._actor)

    def restore_run(self, run_id: str) -> None:
        from ledgerflow.events import tracking_commands as tc

        self._backend.tracking.execute(tc.RestoreRun(run_id=run_id), actor=self._actor)

    def get_metric_history(
        self, run_id: str, key: str, max_points: int | None = None
    ) -> list[Metric]:
        """Every point of `key` in step order, or at most `max_points` of them chosen to keep
        the series' shape (first, last, and each bucket's low and high)."""
        return self._queries.get_metric_history(run_id, key, max_points)

    def get_metric_series(
        self,
        run_id: str,
        key: str,
        points: int = 1000,
        x: str = "step",
        start: int | None = None,
        end: int | None = None,
    ) -> MetricSeries:
        """`key` of run `run_id` as a chart draws it: the range [start, end] of steps (or,
        with x="time", of timestamps in ms) in at most `points` buckets, each with its first
        x, last value, min and max, so spikes survive; every point when the range holds no
        more than `points`. A million-point metric answers as fast as a small one."""
        return self._queries.get_metric_series([(run_id, key)], points, x, start, end)[0]

    def get_metric_series_bulk(
        self,
        series: Sequence[tuple[str, str]],
        points: int = 1000,
        x: str = "step",
        start: int | None = None,
        end: int | None = None,
    ) -> list[MetricSeries]:
        """Several (run_id, key) series over one range at once (at most 100), in order:
        one chart comparing runs."""
        return self._queries.get_metric_series([(r, k) for r, k in series], points, x, start, end)

    # artifacts -------------------------------------------------------------------------
    def log_artifact(
        self, run_id: str, local_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        src = Path(local_path)
        if not src.exists():
            raise InvalidInput(f"local_path {str(local_path)!r} does not exist", field="local_path")
        if src.is_dir():
            raise InvalidInput(
                f"{str(local_path)!r} is a folder; use log_artifacts", field="local_path"
            )
        dest = f"{artifact_path.strip('/')}/{src.name}" if artifact_path else src.name
        self._backend.tracking.log_artifact_files(run_id, [(src, dest)], actor=self._actor)

    def log_artifacts(
        self, run_id: str, local_dir: str | os.PathLike[str], artifact_path: str | None = None
    ) -> None:
        root = Path(local_dir)
        if not root.is_dir():
            raise InvalidInput(f"local_dir {str(local_dir)!r} is not a folder", field="local_dir")
        prefix = artifact_path.strip("/") + "/" if artifact_path else ""
        files = [
            (f, prefix + f.relative_to(root).as_posix())
            for f in sorted(root.rglob("*"))
            if f.is_file()
        ]
        if files:
            self._backend.tracking.log_artifact_files(run_id, files, actor=self._actor)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        if not isinstance(text, str):
            raise InvalidInput(f"text must be a string, got {type(text).__name__}", field="text")
        self._backend.tracking.log_artifact_bytes(
            run_id, text.encode(), artifact_file, actor=self._actor
        )

    def log_dict(self, run_id: str, dictionary: Any, artifact_file: str) -> None:
        if artifact_file.endswith((".yaml", ".yml")):
            try:
                import yaml
            except ImportError:
                raise InvalidInput(
                    "writing YAML needs PyYAML installed; use a .json name"
                ) from None
            text = yaml.safe_dump(dictionary, sort_keys=False)
        else:
            try:
                text = json.dumps(dictionary, indent=2)
            except TypeError as e:
                raise InvalidInput(f"log_dict: the value is not JSON-serializable: {e}") from None
        self.log_text(run_id, text, artifact_file)

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        self.get_run(run_id)
        return self._queries.list_artifacts(run_id, path)

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="ledgerflow-"))
        return str(self._backend.tracking.download_artifacts(run_id, path, dst))


def _kv(x: Any) -> tuple[str, Any]:
    if isinstance(x, tuple) and len(x) == 2:
        return x[0], x[1]
    return x.key, x.value


def _metric_tuple(m: Any) -> tuple[str, Any, Any, Any]:
    if isinstance(m, tuple):
        key, value, *rest = m
        ts = rest[0] if len(rest) > 0 and rest[0] is not None else now_ms()
        step = rest[1] if len(rest) > 1 and rest[1] is not None else 0
        return key, value, ts, step
    return m.key, m.value, m.timestamp if m.timestamp is not None else now_ms(), m.step or 0
