"""Tracking over the gateway, offering what the embedded `TrackingService` offers.

Logging (metric points, params, tags, the end of a run) is validated here with
the same checks as embedded mode, built into events and appended to the
spool; it never waits on the network. Everything that needs an answer from
the server (creating experiments, deletes) is a straight call; the commands among
them travel as their typed models (`RemoteCommands`). Whether a run exists is asked
once per run and remembered; a run that cannot be asked about because the gateway is
down is logged to anyway, and the gateway's projector judges its events once they
arrive.

Starting a run and logging artifacts work while the gateway is down. A run's id, name
and start time are chosen here, so its start can be sent again harmlessly; it is tried
once, at once, and when the gateway cannot be reached it waits in the spool ahead of
what is logged to the run (`remote.pending`), and the run is what this process knows:
RUNNING, in the experiment as named here, with `artifact_uri` '' until the gateway has
it. An experiment set by name meanwhile is `pending:<name>` until the gateway answers,
and the run is started in the experiment of that name there (created if need be).
Files logged while the gateway cannot be reached are copied into the spool and
uploaded in their turn.

Params cannot change. The check runs here against the params this process
logged (and those the run had when it was first looked up). Two processes
giving one param different values are told apart only by the gateway's
projector, which keeps the first and dead-letters the other
(`ledgerflow dead-letters list`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerflow.events import limits
from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.commands import R
from ledgerflow.events.entities import Experiment, RunInfo
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import InvalidInput, NotFound, Unavailable
from ledgerflow.remote.channel import Channel, seg
from ledgerflow.remote.commands import RemoteCommands
from ledgerflow.remote.pending import (
    StagedFile,
    StartRun,
    Upload,
    pending_experiment_id,
    pending_experiment_name,
)
from ledgerflow.remote.uploads import upload
from ledgerflow.services.gateway.schemas import (
    ExperimentOut,
    RunIn,
    RunInfoOut,
    RunOut,
    StoredFileOut,
    TransferUrls,
)
from ledgerflow.services.tracking.decide import (
    DEFAULT_EXPERIMENT_ID,
    DEFAULT_EXPERIMENT_NAME,
    POINTS_PER_EVENT,
    check_end_status,
    clean_metrics,
    clean_params,
    clean_tags,
    decide_log_batch,
    metrics_logged,
    require_active_run,
    run_tags,
)
from ledgerflow.services.tracking.run_names import random_run_name

CHECK_TIMEOUT_S = 5.0  # looking a run up before logging to it; longer and logging would wait


@dataclass
class _Run:
    info: RunInfo | None  # None: not looked up yet, the gateway was unreachable
    params: dict[str, str] = field(default_factory=dict)


def _started_here(info: RunInfo | None) -> bool:
    """Whether `info` is what this process made up for a run started while the gateway
    could not be reached (it has no artifact_uri until the gateway has the run)."""
    return info is not None and not info.artifact_uri


class RemoteTracking:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel
        self._commands = RemoteCommands(channel)
        self._runs: dict[str, _Run] = {}
        self._experiments: dict[str, str] = {}  # name -> id, as the gateway answered
        self._lock = threading.Lock()

    # experiments -------------------------------------------------------------------------
    def _experiment(self, doc: Any) -> Experiment:
        exp = ExperimentOut.model_validate(doc).entity()
        with self._lock:
            self._experiments[exp.name] = exp.experiment_id
        return exp

    def execute(self, command: tc.TrackingCommand[R], *, actor: str) -> R:
        """A tracking command over the gateway; a deleted or restored run is forgotten
        here, so the next logging call checks its state again."""
        result = self._commands.execute(command, actor=actor)
        if isinstance(command, (tc.DeleteRun, tc.RestoreRun)):
            with self._lock:
                self._runs.pop(command.run_id, None)
        return result

    def get_or_create_experiment(self, name: str, *, actor: str) -> Experiment:
        """The experiment called `name`; while the gateway cannot be reached, one known by
        that name alone (`pending:<name>`), for runs to be started in."""
        try:
            doc = self._ch.attempt(
                "PUT", "/experiments/by-name", actor=actor, params={"name": name}
            )
        except Unavailable:
            limits.check_name(name, "experiment name", limits.MAX_EXPERIMENT_NAME_LENGTH)
            return Experiment(pending_experiment_id(name), name, "", "active")
        return self._experiment(doc)

    def default_experiment(self, *, actor: str) -> Experiment:
        try:
            return self._experiment(self._ch.attempt("PUT", "/experiments/default", actor=actor))
        except Unavailable:  # its id is known; the gateway makes it when the run arrives
            return Experiment(DEFAULT_EXPERIMENT_ID, DEFAULT_EXPERIMENT_NAME, "", "active")

    # runs ------------------------------------------------------------------------------------
    def _remember(self, info: RunInfo) -> RunInfo:
        with self._lock:
            known = self._runs.get(info.run_id)
            if known is None:
                self._runs[info.run_id] = _Run(info)
            else:
                known.info = info
        return info

    def _run_info(self, doc: Any) -> RunInfo:

        return self._remember(RunInfoOut.model_validate(doc).entity())

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
        """Start a run; while the gateway cannot be reached, in the spool (see above)."""
        rid = os.urandom(16).hex() if run_id is None else limits.check_run_id(run_id)
        clean = clean_tags(tags or {})
        start = StartRun(
            actor=actor,
            run=RunIn(
                experiment_id=str(experiment_id),
                user_id=user_id,
                run_name=run_tags(clean, run_name, parent_run_id, random_run_name())[
                    "mlflow.runName"
                ],
                start_time=now_ms() if start_time is None else limits.check_timestamp(start_time),
                tags=clean,
                parent_run_id=parent_run_id,
                run_id=rid,
            ),
        )
        try:
            return self._start(start)
        except Unavailable:
            run = self._resolved(start.run)  # its experiment's id may have come meanwhile
            self._ch.defer(start.model_copy(update={"run": run}))
        info = RunInfo(
            run_id=rid,
            experiment_id=run.experiment_id,
            run_name=str(run.run_name),
            user_id=user_id,
            status="RUNNING",
            start_time=int(run.start_time or 0),
            end_time=None,
            artifact_uri="",  # the gateway decides it when the run reaches it
            lifecycle_stage="active",
        )
        return self._remember(info)

    def _resolved(self, run: RunIn) -> RunIn:
        """`run` in the experiment with the id the gateway gave its name, once known."""
        name = pending_experiment_name(run.experiment_id)
        with self._lock:
            known = None if name is None else self._experiments.get(name)
        return run if known is None else run.model_copy(update={"experiment_id": known})

    def _start(self, start: StartRun) -> RunInfo:
        """Start the run at once: Unavailable when the gateway cannot be reached now."""
        run = self._resolved(start.run)
        name = pending_experiment_name(run.experiment_id)
        if name is not None:
            params = {"name": name}
            doc = self._ch.attempt("PUT", "/experiments/by-name", actor=start.actor, params=params)
            run = run.model_copy(update={"experiment_id": self._experiment(doc).experiment_id})
        body = run.model_dump(mode="json")
        doc = self._ch.attempt("POST", "/runs", actor=start.actor, json=body, idempotent=True)
        return self._run_info(doc)

    def resume_run(self, run_id: str, *, actor: str) -> RunInfo:
        return self._run_info(self._ch.call("POST", f"/runs/{seg(run_id)}/resume", actor=actor))

    def active_run_info(self, run_id: str) -> RunInfo:
        with self._lock:
            known = self._runs.get(run_id)
        if known is not None and _started_here(known.info):
            return require_active_run(known.info, run_id)  # the gateway has not got it yet
        doc = self._ch.call("GET", f"/runs/{seg(run_id)}/info", flush=False)
        return require_active_run(self._run_info(doc), run_id)

    def _checked(self, run_id: str, *, active: bool = True) -> _Run:
        """What this process knows of a run, looking it up the first time. When the
        gateway cannot be asked, the run is taken on trust."""
        with self._lock:
            known = self._runs.get(run_id)
        if known is not None:
            if active and known.info is not None:
                require_active_run(known.info, run_id)
            return known
        try:
            doc = self._ch.call(
                "GET", f"/runs/{seg(run_id)}", flush=False, attempts=1, timeout=CHECK_TIMEOUT_S
            )
        except Unavailable:
            with self._lock:
                return self._runs.setdefault(run_id, _Run(None))
        run = RunOut.model_validate(doc).entity()
        if active:
            require_active_run(run.info, run_id)
        with self._lock:
            known = self._runs.setdefault(run_id, _Run(run.info))
            known.info = run.info
            known.params = {**run.data.params, **known.params}
            return known

    def log_params(self, run_id: str, params: Mapping[str, Any], *, actor: str) -> None:
        self.log_batch(run_id, params=params, actor=actor)

    def log_metric_points(
        self,
        run_id: str,
        points: Sequence[p.MetricPoint],
        *,
        actor: str,
        batch: int = POINTS_PER_EVENT,
    ) -> None:
        """Points already validated by the caller (the SDK validates as it buffers)."""
        self._checked(run_id)
        self._ch.spool(metrics_logged(run_id, points, batch), actor)

    def log_metrics(
        self, run_id: str, metrics: Iterable[tuple[str, Any, Any, Any]], *, actor: str
    ) -> None:

        points = clean_metrics(metrics)
        if points:
            self.log_metric_points(run_id, points, actor=actor)

    def set_tags(self, run_id: str, tags: Mapping[str, Any], *, actor: str) -> None:

        clean = clean_tags(tags)
        if clean:
            self._checked(run_id)
            self._ch.spool([p.RunTagsSet(run_id=run_id, tags=clean)], actor)

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[tuple[str, Any, Any, Any]] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        *,
        actor: str,
    ) -> None:
        """Params, points and tags checked together and spooled as one batch: nothing is
        logged when any of them is refused."""
        clean = clean_params(params or {})
        points = clean_metrics(metrics)
        tags_ = clean_tags(tags or {})
        known = self._checked(run_id)
        with self._lock:
            events = decide_log_batch(run_id, known.params, clean, points, tags_)
            if not events:
                return
            self._ch.spool(events, actor)
            known.params.update(clean)

    def finish_run(
        self, run_id: str, status: str = "FINISHED", end_time: int | None = None, *, actor: str
    ) -> None:

        self._checked(run_id, active=False)
        self._ch.spool(
            [
                p.RunFinished(
                    run_id=run_id,
                    status=check_end_status(str(status).upper()),
                    end_time=now_ms() if end_time is None else limits.check_timestamp(end_time),
                )
            ],
            actor,
        )

    # artifacts -------------------------------------------------------------------------------
    def log_artifact_files(
        self, run_id: str, files: Sequence[tuple[Path, str]], *, actor: str
    ) -> None:
        """Upload files to the given paths under the run's artifact root, then record them
        all at once (so a failed upload records none); while the gateway cannot be
        reached, copy them into the spool to be uploaded in their turn."""
        self._upload(run_id, [(source, dest) for source, dest in files], actor)

    def log_artifact_bytes(
        self, run_id: str, data: bytes, artifact_file: str, *, actor: str
    ) -> None:
        self._upload(run_id, [(data, artifact_file)], actor, what="artifact_file")

    def _upload(
        self,
        run_id: str,
        files: list[tuple[Path | bytes, str]],
        actor: str,
        what: str = "artifact_path",
    ) -> None:
        from ledgerflow.services.artifacts.port import safe_relpath

        rels = [safe_relpath(dest, what) for _, dest in files]
        if not all(rels):
            raise InvalidInput(f"{what} must name a file", field=what)
        checked = [(source, rel) for (source, _), rel in zip(files, rels, strict=True)]
        try:
            with self._ch.at_once() as http:
                upload(http, run_id, checked, actor=actor, attempts=1)
            return
        except Unavailable:
            pass
        staged = tuple(StagedFile(name=self._ch.stage(src), path=rel) for src, rel in checked)
        self._ch.defer(Upload(actor=actor, run_id=run_id, files=staged))

    def download_artifacts(self, run_id: str, path: str, dst: Path) -> Path:
        from ledgerflow.services.artifacts.port import safe_relpath

        rel = safe_relpath(path or "")
        docs = self._ch.call("GET", f"/runs/{seg(run_id)}/artifacts/entries")
        entries = [StoredFileOut.model_validate(d).path for d in docs]
        if rel in entries:
            result = dst / Path(rel).name
            chosen = {rel: result}
        else:
            prefix = rel + "/" if rel else ""
            result = dst / Path(rel).name if rel else dst
            chosen = {k: result / k[len(prefix) :] for k in entries if k.startswith(prefix)}
            if not chosen:
                raise NotFound(
                    f"run {run_id} has no artifact at {path!r}", kind="artifact", key=path
                )
        names = list(chosen)
        for start in range(0, len(names), 1000):
            urls = TransferUrls.model_validate(
                self._ch.call(
                    "POST",
                    f"/runs/{seg(run_id)}/artifacts/download-urls",
                    json={"paths": names[start : start + 1000]},
                    idempotent=True,
                    flush=False,
                )
            )
            for target in urls.files:
                self._ch.http.download(target.url, chosen[target.path])
        if not result.exists():  # an artifact folder with no files under it
            result.mkdir(parents=True, exist_ok=True)
        return result
