"""The fluent side of `ledgerflow.onnx`: log to the active run, load by URI through the
session's client."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow import _flavor_fluent
from ledgerflow.onnx import flavor

if TYPE_CHECKING:
    from ledgerflow.models import ModelInfo


def log_model(
    onnx_model: Any,
    artifact_path: str | None = None,
    *,
    name: str | None = None,
    registered_model_name: str | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save the model into the active run's artifacts (a run is started if none is active)."""
    return _flavor_fluent.log_model(
        flavor,
        name=name,
        artifact_path=artifact_path,
        registered_model_name=registered_model_name,
        onnx_model=onnx_model,
        **save_kwargs,
    )


def load_model(
    model_uri: str | Path, dst_path: str | None = None, *, version: int | str | None = None
) -> Any:
    """The checked `onnx.ModelProto` behind `model_uri` (a path, `runs:/`, `models:/` URI;
    or a registered model's name with `version`)."""
    uri = _flavor_fluent.registered(model_uri, version)
    return flavor.load(uri, dst_path, source=_flavor_fluent.source())
