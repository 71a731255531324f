"""The fluent side of `ledgerflow.spacy`: log to the active run, load by URI (or a
registered model's name and version) through the session's client."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ledgerflow import _flavor_fluent
from ledgerflow.models.model import ModelInfo
from ledgerflow.spacy import flavor

if TYPE_CHECKING:
    from spacy.language import Language


def log_model(
    spacy_model: Language,
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
        spacy_model=spacy_model,
        **kwargs,
    )


def load_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    version: int | str | None = None,
) -> Language:
    """The spaCy pipeline saved at `model_uri` (path, file:, runs:/, models:/; or a
    registered model's name with `version`)."""
    uri = _flavor_fluent.registered(model_uri, version)
    nlp: Language = flavor.load(uri, dst_path, source=_flavor_fluent.source())
    return nlp
