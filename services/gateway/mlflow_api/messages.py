"""Ledgerflow's records as MLflow's JSON messages (`service.proto`, `model_registry.proto`).

Artifact locations are given as `mlflow-artifacts:/<store key>`, so MLflow's client reads
and writes artifacts through the gateway's artifact proxy (`artifacts.py`) whatever store
is behind it, and a machine without access to the store's files can still use them."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from ledgerflow.events.entities import (
    Experiment,
    Metric,
    ModelVersion,
    RegisteredModel,
    Run,
    RunInfo,
)

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


def run(
    found: Run,
    latest: Iterable[Metric],
    outputs: Iterable[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A run with its latest metric points (`latest`, with their steps and timestamps)
    and the logged models it output."""
    return {
        "info": run_info(found.info),
        "data": {
            "metrics": [metric(m) for m in latest],
            "params": pairs(found.data.params),
            "tags": pairs(found.data.tags),
        },
        "inputs": {"dataset_inputs": [], "model_inputs": []},
        "outputs": {"model_outputs": list(outputs)},
    }


def _nonfinite(value: float) -> str:
    """NaN and the infinities as protobuf's JSON writes them."""
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def model_version(v: ModelVersion) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": v.name,
        "version": str(v.version),
        "creation_timestamp": v.creation_timestamp,
        "last_updated_timestamp": v.last_updated_timestamp,
        "user_id": v.user_id,
        "current_stage": v.current_stage,
        "description": v.description,
        "source": v.source,
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


def registered_model(m: RegisteredModel) -> dict[str, Any]:
    return {
        "name": m.name,
        "creation_timestamp": m.creation_timestamp,
        "last_updated_timestamp": m.last_updated_timestamp,
        "description": m.description,
        "latest_versions": [model_version(v) for v in m.latest_versions],
        "tags": pairs(m.tags),
        "aliases": [{"alias": a, "version": str(v)} for a, v in m.aliases.items()],
    }
