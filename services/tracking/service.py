"""The tracking command side.

Every command reads the state it needs from the views, decides (pure functions
in `decide`), appends the resulting events and waits until the projector has
applied them, so the caller reads its own writes. If a concurrent writer got
there first and the projector rejected our event, the rejection comes back as
the error it would have been had we seen it coming.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ledgerflow.events import limits
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.commands import R
from ledgerflow.events.entities import Experiment, RunInfo
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.log import EventLog
from ledgerflow.services.artifacts import ArtifactStore, safe_relpath
from ledgerflow.services.artifacts.port import PresigningStore
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.projector.projector import Projector
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.tracking import decide
from ledgerflow.services.tracking.run_names import random_run_name

DEFAULT_EXPERIMENT_ID = decide.DEFAULT_EXPERIMENT_ID
DEFAULT_EXPERIMENT_NAME = decide.DEFAULT_EXPERIMENT_NAME


class TrackingService:
    def __init__(
        self,
        log: EventLog,
        projector: Projector,
        queries: Queries,
        artifacts: ArtifactStore,
        *,
        timeout: float = 60.0,
    ) -> None:
        self.log = log
        self.projector = projector
        self.queries = queries
        self.artifacts = artifacts
        self.timeout = timeout
        self.committer = Committer(log, projector, timeout)

    def commit(self, payloads: Sequence[p.Payload], actor: str) -> None:
        self.committer.commit(payloads, actor)

    handlers = Handlers["TrackingService"]()

    def execute(self, command: tc.TrackingCommand[R], *, actor: str) -> R:
        """Check `command` against the views, commit its events, wait until projected."""
        return self.handlers.run(self, command, actor)

    # experiments -------------------------------------------------------------------
    @handlers.on(tc.CreateExperiment)
    def _create_experiment(self, c: tc.CreateExperiment, actor: str) -> str:
        name = limits.check_name(c.name, "experiment name", limits.MAX_EXPERIMENT_NAME_LENGTH)
        exp_id = c.experiment_id or str(random.SystemRandom().randrange(10**17, 10**18))
        payload = p.ExperimentCreated(
            experiment_id=exp_id,
            name=name,
            artifact_location=c.artifact_location or self.artifacts.uri(exp_id),
            tags=_tags(c.tags or {}),
        )
        decide.decide_create_experiment(self.queries.get_experiment_by_name(name), payload)
        self.commit([payload], actor)
        return exp_id

    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        """The experiment called `name`, creating it if needed; safe when processes race."""
        exp = self.queries.get_experiment_by_name(name)
        if exp is None:
            # another process may create it between our read and our append
            with contextlib.suppress(AlreadyExists):
                self._create_experiment(tc.CreateExperiment(name=name), actor)
            exp = self.queries.get_experiment_by_name(name)
            if exp is None:  # created and deleted-and-renamed in between: vanishingly rare
                raise Conflict(f"experiment {name!r} changed while it was being created; retry")
        return exp

    def default_experiment(self, *, actor: str) -> Experiment:
        exp = self.queries.find_experiment(DEFAULT_EXPERIMENT_ID)
        if exp is None:
            with contextlib.suppress(AlreadyExists, Conflict):
                default = tc.CreateExperiment(
                    name=DEFAULT_EXPERIMENT_NAME, experiment_id=DEFAULT_EXPERIMENT_ID
                )
                self._create_experiment(default, actor)
            exp = self.queries.get_experiment(DEFAULT_EXPERIMENT_ID)
        return exp

    @handlers.on(tc.RenameExperiment)
    def _rename_experiment(self, c: tc.RenameExperiment, actor: str) -> None:
        exp_id, new_name = c.experiment_id, c.name
        limits.check_name(new_name, "experiment name", limits.MAX_EXPERIMENT_NAME_LENGTH)
        self.queries.get_experiment(exp_id)
        other = self.queries.get_experiment_by_name(new_name)
        if other is not None and other.experiment_id != exp_id:
            raise AlreadyExists(f"an experiment named {new_name!r} already exists")
        self.commit([p.ExperimentRenamed(experiment_id=exp_id, name=new_name)], actor)

    @handlers.on(tc.DeleteExperiment)
    def _delete_experiment(self, c: tc.DeleteExperiment, actor: str) -> None:
        exp = self.queries.get_experiment(c.experiment_id)
        if exp.lifecycle_stage == "deleted":
            raise Conflict(f"experiment {c.experiment_id} is already deleted")
        self.commit([p.ExperimentDeleted(experiment_id=c.experiment_id)], actor)

    @handlers.on(tc.RestoreExperiment)
    def _restore_experiment(self, c: tc.RestoreExperiment, actor: str) -> None:
        exp = self.queries.get_experiment(c.experiment_id)
        if exp.lifecycle_stage == "active":
            raise Conflict(f"experiment {c.experiment_id} is not deleted")
        self.commit([p.ExperimentRestored(experiment_id=c.experiment_id)], actor)

    @handlers.on(tc.SetExperimentTag)
    def _set_experiment_tag(self, c: tc.SetExperimentTag, actor: str) -> None:
        key = limits.check_key(c.key, "tag")
        text = limits.check_value(c.value, "tag", key, limits.MAX_TAG_VALUE_LENGTH)
        self.queries.get_experiment(c.experiment_id)
        tag = p.ExperimentTagSet(experiment_id=c.experiment_id, key=key, value=text)
        self.commit([tag], actor)

    @handlers.on(tc.DeleteExperimentTag)
    def _delete_experiment_tag(self, c: tc.DeleteExperimentTag, actor: str) -> None:
        exp = self.queries.get_experiment(c.experiment_id)
        self.commit([decide.decide_delete_experiment_tag(exp, c.key)], actor)

    # runs ----------------------------------------------------------------------------
    def create_run(
        self,
        experiment_id: str,
        *,
        user_id: str,
        run_name: str | None = None,
        start_time: int | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
        actor: str,
        run_id: str | None = None,
    ) -> RunInfo:
        """Start a run. With `run_id` (the caller's choice) it is safe to send again: a
        run already started with that id as asked is returned as it is
        (`decide.decide_start_run`)."""
        if run_id is not None:
            limits.check_run_id(run_id)
        rid = run_id or os.urandom(16).hex()
        all_tags = decide.run_tags(tags or {}, run_name, parent_run_id, random_run_name())
        started = p.RunStarted(
            run_id=rid,
            experiment_id=str(experiment_id),
            run_name=all_tags["mlflow.runName"],
            start_time=now_ms() if start_time is None else limits.check_timestamp(start_time),
            user_id=user_id,
            artifact_uri=self.artifacts.uri(f"{experiment_id}/{rid}/artifacts"),
            parent_run_id=parent_run_id,
            tags=all_tags,
        )
        if run_id is not None and self._started_before(started, start_time is not None):
            return self.queries.get_run_info(rid)
        decide.require_active_experiment(
            self.queries.find_experiment(str(experiment_id)), str(experiment_id)
        )
        if parent_run_id is not None and self.queries.find_run_info(parent_run_id) is None:
            raise NotFound(
                f"parent run {parent_run_id!r} does not exist", kind="run", key=parent_run_id
            )
        try:
            self.commit([started], actor)
        except AlreadyExists:  # a start of this id from beyond the log's dedupe window
            if run_id is None:
                raise
        # A start's event id is its run's (`RunStarted.identity`): the log keeps one start
        # per run and takes a retry as the same event, so what was projected may be another
        # caller's start of this id; it is ours only if it is the start asked for.
        if run_id is None:  # a fresh id: the run is the one this start made
            return decide.started_info(started)
        if not self._started_before(started, start_time is not None):
            raise Conflict(f"run {rid!r} is not in the views after its start was recorded")
        return self.queries.get_run_info(rid)

    def _started_before(self, started: p.RunStarted, start_time_given: bool) -> bool:
        """Whether the run `started` names is already there as asked (AlreadyExists when
        another run has its id)."""
        found = self.queries.find_run_info(started.run_id)
        existing = None if found is None else self.queries.get_run(started.run_id)
        again = decide.decide_start_run(existing, started, start_time_given=start_time_given)
        return again is None

    def resume_run(self, run_id: str, *, actor: str) -> RunInfo:
        run = decide.require_active_run(self.queries.find_run_info(run_id), run_id)
        if run.status != "RUNNING":
            self.commit([p.RunResumed(run_id=run_id)], actor)
        return self.queries.get_run_info(run_id)

    def active_run_info(self, run_id: str) -> RunInfo:
        return decide.require_active_run(self.queries.find_run_info(run_id), run_id)

    def log_params(self, run_id: str, params: Mapping[str, Any], *, actor: str) -> None:
        self.log_batch(run_id, params=params, actor=actor)

    def log_metric_points(
        self,
        run_id: str,
        points: Sequence[p.MetricPoint],
        *,
        actor: str,
        batch: int = decide.POINTS_PER_EVENT,
    ) -> None:
        """Points already validated by the caller (the SDK validates as it buffers)."""
        self.active_run_info(run_id)
        self.commit(decide.metrics_logged(run_id, points, batch), actor)

    def log_metrics(
        self, run_id: str, metrics: Iterable[tuple[str, Any, Any, Any]], *, actor: str
    ) -> None:
        """Validate (key, value, timestamp, step) tuples and log them."""
        pts = decide.clean_metrics(metrics)
        if pts:
            self.log_metric_points(run_id, pts, actor=actor)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, Any, Any]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        actor: str,
    ) -> None:
        """Params, metric points and tags checked together and appended as one batch:
        nothing is logged when any of them is refused."""
        clean_params = decide.clean_params(params or {})
        points = decide.clean_metrics(metrics)
        clean_tags = _tags(tags or {})
        self.active_run_info(run_id)
        stored = self.queries.run_params(run_id) if clean_params else {}
        events = decide.decide_log_batch(run_id, stored, clean_params, points, clean_tags)
        if events:
            self.commit(events, actor)

    def log_inputs(self, run_id: str, datasets: Sequence[p.DatasetInput], *, actor: str) -> None:
        """Record the datasets a run read (their names, digests and sources)."""
        if datasets:
            self.active_run_info(run_id)
            self.commit([p.RunInputsLogged(run_id=run_id, datasets=tuple(datasets))], actor)

    def set_tags(self, run_id: str, tags: Mapping[str, Any], *, actor: str) -> None:
        clean = _tags(tags)
        if not clean:
            return
        self.active_run_info(run_id)
        self.commit([p.RunTagsSet(run_id=run_id, tags=clean)], actor)

    @handlers.on(tc.DeleteTag)
    def _delete_tag(self, c: tc.DeleteTag, actor: str) -> None:
        self.active_run_info(c.run_id)
        tags = self.queries.get_run(c.run_id).data.tags
        self.commit([decide.decide_delete_tag(c.run_id, tags, c.key)], actor)

    def finish_run(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None, *, actor: str
    ) -> None:
        run = self.queries.find_run_info(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        ts = limits.check_timestamp(end_time) if end_time is not None else now_ms()
        self.commit([decide.decide_finish(run, str(status).upper(), ts)], actor)

    @handlers.on(tc.DeleteRun)
    def _delete_run(self, c: tc.DeleteRun, actor: str) -> None:
        run = self.queries.find_run_info(c.run_id)
        if run is None:
            raise NotFound(f"no run with id {c.run_id!r}", kind="run", key=c.run_id)
        if run.lifecycle_stage == "deleted":
            raise Conflict(f"run {c.run_id} is already deleted")
        self.commit([p.RunDeleted(run_id=c.run_id)], actor)

    @handlers.on(tc.RestoreRun)
    def _restore_run(self, c: tc.RestoreRun, actor: str) -> None:
        run = self.queries.find_run_info(c.run_id)
        if run is None:
            raise NotFound(f"no run with id {c.run_id!r}", kind="run", key=c.run_id)
        if run.lifecycle_stage == "active":
            raise Conflict(f"run {c.run_id} is not deleted")
        self.commit([p.RunRestored(run_id=c.run_id)], actor)

    # artifacts -----------------------------------------------------------------------
    def artifact_key(self, run: RunInfo, rel: str) -> str:
        """The store key of `rel` under the run's artifact root."""
        return f"{run.experiment_id}/{run.run_id}/artifacts/{rel}"

    def log_artifact_files(
        self, run_id: str, files: Sequence[tuple[Path, str]], *, actor: str
    ) -> None:
        """Store local files at the given paths under the run's artifact root."""
        run = self.active_run_info(run_id)
        events: list[p.Payload] = []
        for source, dest in files:
            rel = safe_relpath(dest)
            if not rel:
                raise InvalidInput("artifact path must name a file", field="artifact_path")
            stored = self.artifacts.put_file(self.artifact_key(run, rel), source)
            events.append(
                p.RunArtifactLogged(run_id=run_id, path=rel, size=stored.size, sha256=stored.sha256)
            )
        self.commit(events, actor)

    def record_artifacts(
        self, run_id: str, files: Sequence[tuple[str, int, str]], *, actor: str
    ) -> None:
        """Record (path, size, sha256) files a client already put in the store itself (to a
        presigned URL, or streamed through the gateway), so they appear on the run."""
        run = self.active_run_info(run_id)
        events: list[p.Payload] = []
        for path, size, sha256 in files:
            rel = safe_relpath(path)
            if not rel:
                raise InvalidInput("artifact path must name a file", field="path")
            key = self.artifact_key(run, rel)
            if not self.artifacts.exists(key):
                raise InvalidInput(
                    f"artifact {rel!r} of run {run_id} is not in the store; upload it first",
                    field="path",
                )
            if isinstance(self.artifacts, PresigningStore) and self.artifacts.size_of(key) != size:
                raise InvalidInput(
                    f"artifact {rel!r} of run {run_id} holds {self.artifacts.size_of(key)} "
                    f"bytes, not the {size} reported; upload it again",
                    field="size",
                )
            events.append(p.RunArtifactLogged(run_id=run_id, path=rel, size=size, sha256=sha256))
        self.commit(events, actor)

    def log_artifact_bytes(
        self, run_id: str, data: bytes, artifact_file: str, *, actor: str
    ) -> None:
        run = self.active_run_info(run_id)
        rel = safe_relpath(artifact_file, "artifact_file")
        if not rel:
            raise InvalidInput("artifact_file must name a file", field="artifact_file")
        stored = self.artifacts.put_bytes(self.artifact_key(run, rel), data)
        self.commit(
            [p.RunArtifactLogged(run_id=run_id, path=rel, size=stored.size, sha256=stored.sha256)],
            actor,
        )

    def download_artifacts(self, run_id: str, path: str, dst: Path) -> Path:
        run = self.queries.find_run_info(run_id)
        if run is None:
            raise NotFound(f"no run with id {run_id!r}", kind="run", key=run_id)
        rel = safe_relpath(path or "")
        entries = self.queries.artifact_entries(run_id)
        if rel in entries:
            target = dst / Path(rel).name
            return self.artifacts.get_file(self.artifact_key(run, rel), target)
        prefix = rel + "/" if rel else ""
        chosen = [k for k in entries if k.startswith(prefix)]
        if not chosen:
            raise NotFound(f"run {run_id} has no artifact at {path!r}", kind="artifact", key=path)
        root = dst / Path(rel).name if rel else dst
        for key in chosen:
            self.artifacts.get_file(self.artifact_key(run, key), root / key[len(prefix) :])
        return root


_tags = decide.clean_tags
