"""The fluent side of `ledgerflow.spark`: log to the active run, load by URI (or a
registered model's name and version) through the session's client."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ledgerflow import _flavor_fluent
from ledgerflow.models.model import ModelInfo
from ledgerflow.spark import flavor

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel


def log_model(
    spark_model: Any,
    name: str | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """`save_model`, then log the directory to the active run under `name` (default
    "model"); with `registered_model_name`, also register it."""
    return _flavor_fluent.log_model(
        flavor,
        name=name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        spark_model=spark_model,
        **kwargs,
    )


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    version: int | str | None = None,
) -> PipelineModel:
    """The PipelineModel saved at `model_uri` (path, file:, runs:/, models:/; or a
    registered model's name with `version`), in the active Spark session or a local one
    started for it."""
    uri = _flavor_fluent.registered(model_uri, version)
    model: PipelineModel = flavor.load(uri, dst_path, source=_flavor_fluent.source())
    return model
