"""The fluent side of `ledgerflow.pytorch`: log to the active run, load by URI through the
session's client, under its pickle policy."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow import _flavor_fluent
from ledgerflow.pytorch import flavor

if TYPE_CHECKING:
    from ledgerflow.models import ModelInfo


def log_model(
    pytorch_model: Any,
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
        pytorch_model=pytorch_model,
        **save_kwargs,
    )


def load_model(
    model_uri: str | Path,
    dst_path: str | None = None,
    *,
    version: int | str | None = None,
    **kwargs: Any,
) -> Any:
    """The torch module behind `model_uri` (a path, `runs:/`, `models:/` URI; or a
    registered model's name with `version`).

    `device=` moves it there; other `kwargs` go to `torch.load` for pickled models.
    """
    uri = _flavor_fluent.registered(model_uri, version)
    return _flavor_fluent.load_model(flavor.load, uri, dst_path, **kwargs)
