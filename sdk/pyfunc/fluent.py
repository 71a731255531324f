"""The fluent side of `ledgerflow.pyfunc`: log to the active run, and save or load with
`runs:/` and `models:/` URIs looked up through the session, under its pickle policy."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Mapping
from typing import Any

from ledgerflow import _flavor_fluent
from ledgerflow.models.model import Model, ModelInfo
from ledgerflow.pyfunc import flavor
from ledgerflow.pyfunc.loading import PyFuncModel, load


@functools.wraps(flavor.save_model)
def save_model(*args: Any, **kwargs: Any) -> Model:
    kwargs.setdefault("artifact_source", _flavor_fluent.source())
    return flavor.save_model(*args, **kwargs)


def log_model(
    name: str | None = None,
    python_model: Any = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    *,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    **kwargs: Any,
) -> ModelInfo:
    """`save_model`, then log the directory to the active run under `name` (default
    "model"); with `registered_model_name`, also register it."""
    return _flavor_fluent.log_model(
        sys.modules[__name__],
        name=name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        python_model=python_model,
        artifacts=artifacts,
        **kwargs,
    )


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    model_config: dict[str, Any] | None = None,
    *,
    version: int | str | None = None,
) -> PyFuncModel:
    """Load the model at `model_uri` (path, file:, runs:/, models:/) as a PyFuncModel; or,
    with `version`, that version of the registered model `model_uri` names:
    `load_model("cnn-fashion-model", version=5)`."""
    uri = _flavor_fluent.registered(model_uri, version)
    return _flavor_fluent.load_model(load, uri, dst_path, model_config)
