"""Logged model commands (`ledgerflow.events.logged_model_commands`): read the views,
decide (`decide`), append `logged_model.*` events, wait until projected.

A model's files go to the artifact store under its own root (`decide.artifact_key`);
`record_artifacts` then puts them on the model as events, as the run's do."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events.commands import Command, R
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.logged_model_entities import LoggedModel
from ledgerflow.services.artifacts import ArtifactStore, safe_relpath
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.logged_models import decide
from ledgerflow.services.projector.logged_model_queries import LoggedModelQueries
from ledgerflow.services.projector.queries import Queries
from ledgerflow.services.tracking.decide import require_active_experiment, require_active_run
from ledgerflow.services.tracking.run_names import random_run_name


def new_model_id() -> str:
    """An id as MLflow draws them (`m-` and 32 hex digits)."""
    return f"m-{uuid.uuid4().hex}"


class LoggedModelService:
    def __init__(
        self,
        committer: Committer,
        queries: LoggedModelQueries,
        tracking: Queries,
        artifacts: ArtifactStore,
    ) -> None:
        self._committer = committer
        self.queries = queries
        self._tracking = tracking
        self.artifacts = artifacts

    handlers = Handlers["LoggedModelService"]()

    def execute(self, command: Command[R], *, actor: str) -> R:
        """Decide on `command`, commit its events, wait until projected."""
        return self.handlers.run(self, command, actor)

    def _in(self, c: lc.OnLoggedModel[R]) -> LoggedModel:
        return decide.require_in(self.queries.find(c.model_id), c.model_id, c.experiment_id)

    @handlers.on(lc.CreateLoggedModel)
    def _create(self, c: lc.CreateLoggedModel, actor: str) -> LoggedModel:
        exp = self._tracking.find_experiment(c.experiment_id)
        require_active_experiment(exp, c.experiment_id)
        run = self._tracking.find_run_info(c.source_run_id) if c.source_run_id else None
        created = decide.decide_create(
            model_id=new_model_id(),
            experiment_id=c.experiment_id,
            name=c.name if c.name is not None else random_run_name(),
            model_type=c.model_type,
            source_run_id=c.source_run_id,
            params=c.params,
            tags=c.tags,
            run_experiment=None if run is None else run.experiment_id,
        )
        self._committer.commit([created], actor)
        return self.queries.get(created.model_id)

    @handlers.on(lc.FinalizeLoggedModel)
    def _finalize(self, c: lc.FinalizeLoggedModel, actor: str) -> LoggedModel:
        self._committer.commit(
            [decide.decide_finalize(self._in(c), c.status, c.status_message)], actor
        )
        return self.queries.get(c.model_id)

    @handlers.on(lc.SetLoggedModelTags)
    def _set_tags(self, c: lc.SetLoggedModelTags, actor: str) -> None:
        event = decide.decide_set_tags(self._in(c), c.tags)
        if event is not None:
            self._committer.commit([event], actor)

    @handlers.on(lc.DeleteLoggedModelTag)
    def _delete_tag(self, c: lc.DeleteLoggedModelTag, actor: str) -> None:
        self._committer.commit([decide.decide_delete_tag(self._in(c), c.key)], actor)

    @handlers.on(lc.LogLoggedModelParams)
    def _log_params(self, c: lc.LogLoggedModelParams, actor: str) -> None:
        event = decide.decide_log_params(self._in(c), c.params)
        if event is not None:
            self._committer.commit([event], actor)

    @handlers.on(lc.LogLoggedModelMetrics)
    def _log_metrics(self, c: lc.LogLoggedModelMetrics, actor: str) -> None:
        event = decide.decide_metrics(
            self._in(c),
            c.points,
            run_id=c.run_id,
            dataset_name=c.dataset_name,
            dataset_digest=c.dataset_digest,
        )
        self._committer.commit([event], actor)

    @handlers.on(lc.DeleteLoggedModel)
    def _delete(self, c: lc.DeleteLoggedModel, actor: str) -> None:
        model = self._in(c)
        deleted = lm.LoggedModelDeleted(model_id=model.model_id, experiment_id=model.experiment_id)
        self._committer.commit([deleted], actor)

    @handlers.on(lc.LogRunOutputs)
    def _log_outputs(self, c: lc.LogRunOutputs, actor: str) -> None:
        require_active_run(self._tracking.find_run_info(c.run_id), c.run_id)
        known = self._active([mid for mid, _ in c.models])
        self._committer.commit([decide.decide_outputs(c.run_id, c.models, known)], actor)

    @handlers.on(lc.LogRunInputs)
    def _log_inputs(self, c: lc.LogRunInputs, actor: str) -> None:
        require_active_run(self._tracking.find_run_info(c.run_id), c.run_id)
        known = self._active(c.model_ids)
        self._committer.commit([decide.decide_inputs(c.run_id, c.model_ids, known)], actor)

    def _active(self, ids: Sequence[str]) -> dict[str, LoggedModel]:
        return {
            m.model_id: m
            for mid in ids
            if (m := self.queries.find(mid)) is not None and m.lifecycle_stage == "active"
        }

    # artifacts -----------------------------------------------------------------------
    def artifact_key(self, model: LoggedModel, rel: str) -> str:
        """The store key of `rel` under the model's artifact root."""
        return f"{model.artifact_key}/{rel}"

    def record_artifacts(
        self, model_id: str, files: Sequence[tuple[str, int, str]], *, actor: str
    ) -> None:
        """Record (path, size, sha256) files already put in the store under the model's
        artifact root, so they are listed and downloaded from it."""
        model = self.queries.get(model_id)
        for path, _, _ in files:
            rel = safe_relpath(path)
            if rel and not self.artifacts.exists(self.artifact_key(model, rel)):
                raise InvalidInput(
                    f"artifact {rel!r} of logged model {model_id} is not in the store; "
                    "upload it first",
                    field="path",
                )
        self._committer.commit(decide.decide_artifacts(model, files), actor)
