"""From a model URI to a predictor with a name and version: registered models
(`models:/name/1`, `models:/name@alias`), runs (`runs:/...`), local model folders, and
bundles (`bundle:<id>`, or a folder with a manifest.json).

Registered models, runs and bundles are looked up in the `ModelSource` the process
that serves passes (its own backend), and models are unpickled only under the pickle
policy it passes (its settings' LEDGERFLOW_ALLOW_PICKLE): nothing here reads the
environment or builds a client."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.uri import ArtifactSource
from ledgerflow.services.serving.predictors import (
    Predictor,
    PyFuncPredictor,
    is_bundle_dir,
    load_bundle,
)

BUNDLE_PREFIX = "bundle:"


class ModelSource(ArtifactSource, Protocol):
    """Where served models come from: runs and registered models (the model format's
    `ArtifactSource`), and built bundles. A `ledgerflow.Client` is one; so is
    `BackendSource` over an embedded backend."""

    def download_bundle(self, bundle_id: str, dst_path: str | None = None) -> str: ...


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    predictor: Predictor
    resource: tuple[str, str] | None = None
    """(kind, key) whose READ a caller needs to use it (`ServedModel.resource`)."""
    labels: tuple[str, ...] = ()
    """The registry aliases of its version when it was loaded (TF Serving's version labels
    where the server follows no log)."""
    registered: str | None = None
    """The registered model it is a version of (whose aliases are its labels)."""


def _needs_source(uri: str, source: ModelSource | None) -> ModelSource:
    if source is None:
        raise InvalidInput(
            f"{uri!r} names a registered model or a bundle, and this server was given no "
            "backend to look it up in; serve a local model folder, or start it with one",
            field="model_uri",
        )
    return source


def _registered(uri: str, source: ModelSource | None) -> tuple[str, str, tuple[str, ...]] | None:
    """(name, version, aliases) of a models:/ URI, resolving an alias or `latest` in the
    registry; the aliases are the version's when it was loaded (none known without a
    source)."""
    m = re.fullmatch(r"models:/([^/@]+)(?:/(\d+))?.*", uri)
    if m is None:
        return None
    if m.group(2) and source is None:
        return m.group(1), m.group(2), ()
    mv = _needs_source(uri, source).resolve_model_version(
        f"models:/{m.group(1)}/{m.group(2)}" if m.group(2) else uri
    )
    return str(mv.name), str(mv.version), tuple(mv.aliases)


def _default_name(uri: str, path: Path | None) -> str:
    if path is not None:
        return path.resolve().name or "model"
    if uri.startswith("runs:/"):
        return uri.rstrip("/").rsplit("/", 1)[-1] or "model"
    return "model"


def load(
    uri: str,
    name: str | None = None,
    *,
    source: ModelSource | None = None,
    allow_pickle: bool = True,
) -> LoadedModel:
    """Load the model `uri` names, looking registered models, runs and bundles up in
    `source` (None: local folders only), unpickling only if `allow_pickle`. Blocking
    (downloads, imports, deserializes)."""
    if uri.startswith(BUNDLE_PREFIX) or is_bundle_dir(Path(uri)):
        if uri.startswith(BUNDLE_PREFIX):
            bundle_id = uri[len(BUNDLE_PREFIX) :]
            root = Path(_needs_source(uri, source).download_bundle(bundle_id))
        else:
            root = Path(uri)
        bundle = load_bundle(root)
        origin = bundle.manifest.get("source", {})
        registered_name = str(origin.get("name") or "")
        from_registry = registered_name and uri.startswith(BUNDLE_PREFIX)
        return LoadedModel(
            name or registered_name or root.name,
            str(origin.get("version") or "1"),
            bundle,
            ("model", registered_name) if from_registry else None,
            registered=registered_name if from_registry else None,
        )
    from ledgerflow.pyfunc.loading import load as load_pyfunc

    model = load_pyfunc(uri, source=source, allow_pickle=allow_pickle)
    registered = _registered(uri, source)
    if registered is not None:
        resource = ("model", registered[0])
        return LoadedModel(
            name or registered[0],
            registered[1],
            PyFuncPredictor(model),
            resource,
            registered[2],
            registered[0],
        )
    run = re.fullmatch(r"runs:/([^/]+).*", uri)
    local = None
    if uri.startswith("file:"):
        local = Path(urlparse(uri).path)
    elif ":/" not in uri:
        local = Path(uri)
    predictor = PyFuncPredictor(model)
    return LoadedModel(
        name or _default_name(uri, local), "1", predictor, ("run", run[1]) if run else None
    )
