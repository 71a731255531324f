"""The fluent side of `ledgerflow.tensorflow`: log to the active run, load by URI through
the session's client, under its pickle policy."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from ledgerflow import _flavor_fluent
from ledgerflow.models.flavor_io import Requirements
from ledgerflow.models.model import ModelInfo
from ledgerflow.models.signature import ModelSignature
from ledgerflow.tensorflow import flavor


def log_model(
    model: Any,
    artifact_path: str | None = None,
    custom_objects: dict[str, Any] | None = None,
    conda_env: Any = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    registered_model_name: str | None = None,
    pip_requirements: Requirements = None,
    extra_pip_requirements: Requirements = None,
    saved_model_kwargs: dict[str, Any] | None = None,
    keras_model_kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    name: str | None = None,
) -> ModelInfo:
    """Save the model into the active run's artifacts under `name` (default "model"),
    starting a run if none is active, and register it if `registered_model_name` is set."""
    return _flavor_fluent.log_model(
        flavor,
        name=name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        model=model,
        custom_objects=custom_objects,
        conda_env=conda_env,
        code_paths=code_paths,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        saved_model_kwargs=saved_model_kwargs,
        keras_model_kwargs=keras_model_kwargs,
        metadata=metadata,
    )


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    saved_model_kwargs: dict[str, Any] | None = None,
    keras_model_kwargs: dict[str, Any] | None = None,
    *,
    version: int | str | None = None,
) -> Any:
    """The Keras model (or the loaded `tf.Module`) at `model_uri`: a path, `runs:/...` or
    `models:/...` URI (or a registered model's name with `version`), saved by Ledgerflow
    or by MLflow."""
    uri = _flavor_fluent.registered(model_uri, version)
    return _flavor_fluent.load_model(
        flavor.load, uri, dst_path, saved_model_kwargs, keras_model_kwargs
    )
