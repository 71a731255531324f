"""Decisions on logged models: pure functions from the state read from the views (and
the command) to the events to append, testable with plain values."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events.errors import Conflict, InvalidInput, NotFound
from ledgerflow.events.logged_model_entities import LoggedModel
from ledgerflow.services.artifacts import safe_relpath
from ledgerflow.services.tracking.decide import clean_metrics, clean_params, clean_tags

MODELS_FOLDER = "models"


def artifact_key(experiment_id: str, model_id: str) -> str:
    """Where a logged model's files live in the store: beside its experiment's runs, as
    MLflow lays them out (`<exp>/models/<model_id>/artifacts`)."""
    return f"{experiment_id}/{MODELS_FOLDER}/{model_id}/artifacts"


def decide_create(
    *,
    model_id: str,
    experiment_id: str,
    name: str,
    model_type: str | None,
    source_run_id: str | None,
    params: Mapping[str, str],
    tags: Mapping[str, str],
    run_experiment: str | None,
) -> lm.LoggedModelCreated:
    """`run_experiment` is the experiment of `source_run_id` (None: no such run)."""
    if not name.strip():
        raise InvalidInput("a logged model's name must not be empty", field="name")
    if source_run_id and run_experiment is None:
        raise NotFound(f"Run with id={source_run_id} not found", kind="run", key=source_run_id)
    return lm.LoggedModelCreated(
        model_id=model_id,
        experiment_id=experiment_id,
        name=name,
        artifact_key=artifact_key(experiment_id, model_id),
        model_type=model_type or "",
        source_run_id=source_run_id or None,
        params=clean_params(params),
        tags=clean_tags(tags),
    )


def require_in(model: LoggedModel | None, model_id: str, experiment_id: str) -> LoggedModel:
    """The active model `model_id` of experiment `experiment_id`, else NotFound (a model
    of another experiment is not found through this one)."""
    if model is None or model.lifecycle_stage != "active" or model.experiment_id != experiment_id:
        where = "" if model is None else f" in experiment {experiment_id}"
        raise NotFound(
            f"Logged model with ID '{model_id}' not found{where}", kind="logged_model", key=model_id
        )
    return model


def decide_finalize(model: LoggedModel, status: str, message: str) -> lm.LoggedModelFinalized:
    if status not in lm.FINAL_STATUSES:
        raise InvalidInput(
            f"a logged model is finalized as READY or FAILED, not {status!r}", field="status"
        )
    return lm.LoggedModelFinalized(
        model_id=model.model_id,
        experiment_id=model.experiment_id,
        status="READY" if status == "READY" else "FAILED",
        status_message=message,
    )


def decide_set_tags(model: LoggedModel, tags: Mapping[str, str]) -> lm.LoggedModelTagsSet | None:
    clean = clean_tags(tags)
    if not clean:
        return None
    return lm.LoggedModelTagsSet(
        model_id=model.model_id, experiment_id=model.experiment_id, tags=clean
    )


def decide_delete_tag(model: LoggedModel, key: str) -> lm.LoggedModelTagDeleted:
    if key not in model.tags:
        raise NotFound(
            f"No tag with key {key!r} found for logged model {model.model_id}", kind="tag", key=key
        )
    return lm.LoggedModelTagDeleted(
        model_id=model.model_id, experiment_id=model.experiment_id, key=key
    )


def decide_log_params(
    model: LoggedModel, params: Mapping[str, str]
) -> lm.LoggedModelParamsLogged | None:
    """Params are immutable, as a run's: the same value again is a no-op."""
    clean = clean_params(params)
    for key, value in clean.items():
        old = model.params.get(key)
        if old is not None and old != value:
            raise Conflict(
                f"param {key!r} of logged model {model.model_id} is already {old!r}; params "
                f"cannot change (tried {value!r})"
            )
    fresh = {k: v for k, v in clean.items() if k not in model.params}
    if not fresh:
        return None
    return lm.LoggedModelParamsLogged(
        model_id=model.model_id, experiment_id=model.experiment_id, params=fresh
    )


def decide_metrics(
    model: LoggedModel,
    points: Sequence[tuple[str, Any, Any, Any]],
    *,
    run_id: str | None,
    dataset_name: str | None,
    dataset_digest: str | None,
) -> lm.LoggedModelMetricsLogged:
    """Points checked as a run's are (keys, values, timestamps, steps)."""
    return lm.LoggedModelMetricsLogged(
        model_id=model.model_id,
        experiment_id=model.experiment_id,
        points=tuple(clean_metrics(points)),
        run_id=run_id or None,
        dataset_name=dataset_name or None,
        dataset_digest=dataset_digest or None,
    )


def decide_outputs(
    run_id: str, models: Sequence[tuple[str, int]], known: Mapping[str, LoggedModel]
) -> lm.RunOutputsLogged:
    """`known`: the active models among those named."""
    outputs = []
    for model_id, step in models:
        if model_id not in known:
            raise NotFound(
                f"Logged model with ID '{model_id}' not found", kind="logged_model", key=model_id
            )
        outputs.append(lm.ModelOutput(model_id=model_id, step=step))
    return lm.RunOutputsLogged(run_id=run_id, models=tuple(outputs))


def decide_inputs(
    run_id: str, model_ids: Sequence[str], known: Mapping[str, LoggedModel]
) -> lm.RunModelInputsLogged:
    """`known`: the active models among those named."""
    for model_id in model_ids:
        if model_id not in known:
            raise NotFound(
                f"Logged model with ID '{model_id}' not found", kind="logged_model", key=model_id
            )
    return lm.RunModelInputsLogged(run_id=run_id, model_ids=tuple(dict.fromkeys(model_ids)))


def decide_artifacts(
    model: LoggedModel, files: Sequence[tuple[str, int, str]]
) -> list[lm.LoggedModelArtifactLogged]:
    """(path, size, sha256) files stored under the model's artifact root."""
    events = []
    for path, size, sha256 in files:
        rel = safe_relpath(path)
        if not rel:
            raise InvalidInput("artifact path must name a file", field="path")
        events.append(
            lm.LoggedModelArtifactLogged(
                model_id=model.model_id, experiment_id=model.experiment_id,
                path=rel, size=size, sha256=sha256,
            )
        )  # fmt: skip
    return events
