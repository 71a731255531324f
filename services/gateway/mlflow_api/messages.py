"""Ledgerflow's records as MLflow's JSON messages (`service.proto`, `model_registry.proto`).

Artifact locations are given as `mlflow-artifacts:/<store key>`, so MLflow's client reads
and writes artifacts through the gateway's artifact proxy (`artifacts.py`) whatever store
is behind it, and a machine without access to the store's files can still use them."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ledgerflow.events.entities import (
    Experiment,
    FileInfo,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInfo,
)
from ledgerflow.events.logged_model_entities import LoggedModel, ModelMetric, ModelOutput
from ledgerflow.events.payloads import DatasetInput

PROXY_SCHEME = "mlflow-artifacts:"


def proxy_uri(key: str) -> str:
    """The artifact proxy's URI of a store key: `0/abc/artifacts` ->
    `mlflow-artifacts:/0/abc/artifacts`."""
    return f"{PROXY_SCHEME}/{key.strip('/')}"


def pairs(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """{"k": "v"} -> [{"key": "k", "value": "v"}] (MLflow's tags and params)."""
    return [{"key": k, "value": v} for k, v in values.items()]


def experiment(exp: Experiment) -> dict[str, Any]:
    out: dict[str, Any] = {
        "experiment_id": exp.experiment_id,
        "name": exp.name,
        "artifact_location": proxy_uri(exp.experiment_id),
        "lifecycle_stage": exp.lifecycle_stage,
        "tags": pairs(exp.tags),
    }
    if exp.creation_time is not None:
        out["creation_time"] = exp.creation_time
    if exp.last_update_time is not None:
        out["last_update_time"] = exp.last_update_time
    return out


def run_artifact_key(info: RunInfo) -> str:
    return f"{info.experiment_id}/{info.run_id}/artifacts"


def run_info(info: RunInfo) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": info.run_id,
        "run_uuid": info.run_id,
        "run_name": info.run_name,
        "experiment_id": info.experiment_id,
        "user_id": info.user_id,
        "status": info.status,
        "start_time": info.start_time,
        "artifact_uri": proxy_uri(run_artifact_key(info)),
        "lifecycle_stage": info.lifecycle_stage,
    }
    if info.end_time is not None:
        out["end_time"] = info.end_time
    return out


def metric(point: Metric) -> dict[str, Any]:
    value = point.value
    return {
        "key": point.key,
        "value": value if math.isfinite(value) else _nonfinite(value),
        "timestamp": point.timestamp,
        "step": point.step,
    }


def dataset_input(d: DatasetInput) -> dict[str, Any]:
    dataset: dict[str, Any] = {
        "name": d.name,
        "digest": d.digest,
        "source_type": d.source_type,
        "source": d.source,
    }
    if d.dataset_schema is not None:
        dataset["schema"] = d.dataset_schema
    if d.profile is not None:
        dataset["profile"] = d.profile
    return {"tags": pairs(d.tags), "dataset": dataset}


def run(
    found: Run,
    latest: Iterable[Metric],
    outputs: Iterable[Mapping[str, Any]] = (),
    inputs: Iterable[DatasetInput] = (),
    model_inputs: Iterable[str] = (),
) -> dict[str, Any]:
    """A run with its latest metric points (`latest`, with their steps and timestamps),
    the datasets it read, the logged models it output and the ids of those it used."""
    return {
        "info": run_info(found.info),
        "data": {
            "metrics": [metric(m) for m in latest],
            "params": pairs(found.data.params),
            "tags": pairs(found.data.tags),
        },
        "inputs": {
            "dataset_inputs": [dataset_input(d) for d in inputs],
            "model_inputs": [{"model_id": m} for m in model_inputs],
        },
        "outputs": {"model_outputs": list(outputs)},
    }


def _nonfinite(value: float) -> str:
    """NaN and the infinities as protobuf's JSON writes them."""
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _as_stored(source: str) -> str:
    return source


def model_version(v: ModelVersion, source: Callable[[str], str] = _as_stored) -> dict[str, Any]:
    """A version; `source` says how its stored source is answered (`locations`)."""
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "description": v.description,
        "source": source(v.source),
        "status": v.status,
        "tags": pairs(v.tags),
        "aliases": list(v.aliases),
    }
    if v.run_id:
        out["run_id"] = v.run_id
    if v.run_link:
        out["run_link"] = v.run_link
    if v.status_message:
        out["status_message"] = v.status_message
    return out


def registered_model(
    m: RegisteredModel, source: Callable[[str], str] = _as_stored
) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "description": m.description,
        "latest_versions": [model_version(v, source) for v in m.latest_versions],
        "tags": pairs(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }


LOGGED_MODEL_STATUS = {
    "PENDING": "LOGGED_MODEL_PENDING",
    "READY": "LOGGED_MODEL_READY",
    "FAILED": "LOGGED_MODEL_UPLOAD_FAILED",
}
"""Ledgerflow's logged model statuses (MLflow's entity names) as `service.proto` spells them."""


def logged_model(m: LoggedModel) -> dict[str, Any]:
    """A logged model as `logged-models/get` answers it, with every metric point."""
    info: dict[str, Any] = {
        "model_id": m.model_id,
        "experiment_id": m.experiment_id,
        "name": m.name,
        "creation_timestamp_ms": m.creation_time,
        "last_updated_timestamp_ms": m.last_updated_time,
        "artifact_uri": proxy_uri(m.artifact_key),
        "status": LOGGED_MODEL_STATUS.get(m.status, "LOGGED_MODEL_STATUS_UNSPECIFIED"),
        "model_type": m.model_type,
        "tags": pairs(m.tags),
    }
    if m.source_run_id:
        info["source_run_id"] = m.source_run_id
    if m.status_message:
        info["status_message"] = m.status_message
    metrics = [model_metric(m.model_id, p) for p in m.metrics]
    return {"info": info, "data": {"params": pairs(m.params), "metrics": metrics}}


def model_metric(model_id: str, p: ModelMetric) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": p.key,
        "value": p.value,
        "timestamp": p.timestamp,
        "step": p.step,
        "model_id": model_id,
    }
    for name, value in (
        ("run_id", p.run_id),
        ("dataset_name", p.dataset_name),
        ("dataset_digest", p.dataset_digest),
    ):
        if value:
            out[name] = value
    return out


def model_output(o: ModelOutput) -> dict[str, Any]:
    return {"model_id": o.model_id, "step": o.step}


def file_info(f: FileInfo) -> dict[str, Any]:
    """A file or folder of an artifact listing (folders carry no size)."""
    out: dict[str, Any] = {"path": f.path, "is_dir": f.is_dir}
    if not f.is_dir and f.file_size is not None:
        out["file_size"] = f.file_size
    return out
