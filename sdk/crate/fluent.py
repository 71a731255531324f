"""The fluent side of `ledgerflow.crate`: log an R-saved model directory to the active
run, load by URI (or a registered model's name and version) through the session."""

from __future__ import annotations

import os
from typing import Any

from ledgerflow import _flavor_fluent
from ledgerflow.crate import flavor
from ledgerflow.crate.flavor import CrateModel
from ledgerflow.models.model import ModelInfo


def log_model(
    r_model_path: str | os.PathLike[str],
    name: str | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """Log the model directory R saved at `r_model_path` (`ledgerflow_save_model` in R) to
    the active run under `name` (default "model"); with `registered_model_name`, also
    register it."""
    return _flavor_fluent.log_model(
        flavor,
        name=name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        r_model_path=r_model_path,
        **kwargs,
    )


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    version: int | str | None = None,
) -> CrateModel:
    """The R model saved at `model_uri` (path, file:, runs:/, models:/; or a registered
    model's name with `version`): `predict(table)` runs it in its R worker."""
    uri = _flavor_fluent.registered(model_uri, version)
    return _flavor_fluent.load_model(flavor.load, uri, dst_path)
