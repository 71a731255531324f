"""From a model URI to a predictor with a name and version: registered models
(`models:/name/1`, `models:/name@alias`), runs (`runs:/...`), local model folders, and
bundles (`bundle:<id>`, or a folder with a manifest.json)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from ledgerflow.services.serving.predictors import (
    Predictor,
    PyFuncPredictor,
    is_bundle_dir,
    load_bundle,
)

BUNDLE_PREFIX = "bundle:"


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Predictor


def _registered(uri: str) -> tuple[str, str] | None:
    """(name, version) of a models:/ URI, resolving an alias or `latest` in the registry."""
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+))?.*", uri)
    if m is None:
        return None
    if m.group(2):
        return m.group(1), m.group(2)
    from ledgerflow.client import Client

    mv = Client().resolve_model_version(uri)
    return str(mv.name), str(mv.version)


def _default_name(uri: str, path: Path | None) -> str:
    if path is not None:
        return path.resolve().name or "model"
    if uri.startswith("runs:/"):
        return uri.rstrip("/").rsplit("/", 1)[-1] or "model"
    return "model"


def load(uri: str, name: str | None = None) -> LoadedModel:
    """Load the model `uri` names. Blocking (downloads, imports, deserializes)."""
    if uri.startswith(BUNDLE_PREFIX) or is_bundle_dir(Path(uri)):
        if uri.startswith(BUNDLE_PREFIX):
            from ledgerflow import bundles

            root = Path(bundles.download(uri[len(BUNDLE_PREFIX) :]))
        else:
            root = Path(uri)
        bundle = load_bundle(root)
        source = bundle.manifest.get("source", {})
        return LoadedModel(
            name or str(source.get("name") or root.name),
            str(source.get("version") or "1"),
            bundle,
        )
    from ledgerflow.pyfunc import load_model

    model = load_model(uri)
    registered = _registered(uri)
    if registered is not None:
        return LoadedModel(name or registered[0], registered[1], PyFuncPredictor(model))
    local = None
    if uri.startswith("file:"):
        local = Path(urlparse(uri).path)
    elif ":/" not in uri:
        local = Path(uri)
    return LoadedModel(name or _default_name(uri, local), "1", PyFuncPredictor(model))
