"""What every flavor's fluent functions share: the process session's side of a model.

The model format (`ledgerflow.models`, each flavor's `flavor` module, `ledgerflow.pyfunc`'s
`flavor`, `loading` and `model`) saves and loads model directories and takes what it
needs as arguments: an `ArtifactSource` for `runs:/` and `models:/` URIs, and the
pickle policy. The fluent functions (`ledgerflow.<flavor>.log_model`, `load_model`,
autolog) supply both from the session here: the default `Client` and the settings'
`allow_pickle`, and log saved directories to the active run.
"""

from __future__ import annotations

import os
import re
import tempfile
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models.model import MLMODEL_FILE_NAME, Model, ModelInfo

if TYPE_CHECKING:
    from ledgerflow.client import Client
    from ledgerflow.events.entities import ModelVersion, Run

DEFAULT_NAME = "model"
T = TypeVar("T")


class SessionSource:
    """The session's default `Client` as the model format's `ArtifactSource`, built at
    each lookup (as `Client()` is), so that loading a local path never reads settings."""

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        return _default_client().download_artifacts(run_id, path, dst_path)

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        return _default_client().resolve_model_version(model_uri)

    def get_run(self, run_id: str) -> Run:
        return _default_client().get_run(run_id)


def _default_client() -> Client:
    from ledgerflow.client import Client

    return Client()


def source() -> SessionSource:
    """Where the fluent API resolves `runs:/` and `models:/` URIs: the session's client."""
    return SessionSource()


def allow_pickle() -> bool:
    """The session's pickle policy (LEDGERFLOW_ALLOW_PICKLE)."""
    from ledgerflow import fluent

    return bool(fluent._current_settings().allow_pickle)


def load_model(
    load: Callable[..., T],
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *args: Any,
    **kwargs: Any,
) -> T:
    """`load` (a flavor's `load`) of the model at `model_uri`, with `runs:/` and `models:/`
    URIs looked up through the session and unpickling under its policy."""
    return load(model_uri, dst_path, *args, source=source(), allow_pickle=allow_pickle(), **kwargs)


def registered(
    model_uri: str | os.PathLike[str], version: int | str | None
) -> str | os.PathLike[str]:
    """`model_uri` itself, or, with `version`, the `models:/NAME/VERSION` URI of that
    version of the registered model `model_uri` names: the seed's
    `lf.pyfunc.load_model("cnn-fashion-model", version=5)`."""
    if version is None:
        return model_uri
    if not isinstance(model_uri, str) or not model_uri.strip() or re.search(r"[/@:]", model_uri):
        raise InvalidInput(
            f"version= goes with a registered model's name, not {str(model_uri)!r}; a URI "
            "names its version itself (models:/NAME/VERSION, models:/NAME@ALIAS)",
            field="version",
        )
    text = str(version)
    if isinstance(version, bool) or not re.fullmatch(r"[1-9][0-9]{0,17}", text):
        raise InvalidInput(f"version must be a positive integer, not {version!r}", field="version")
    return f"models:/{model_uri}/{text}"


def resolve(uri: str | os.PathLike[str], dst_path: str | os.PathLike[str] | None = None) -> Path:
    """A local directory holding the model at `uri`, looked up through the session."""
    from ledgerflow.models import uri as model_uri

    return model_uri.resolve(uri, dst_path, source=source())


def artifact_name(name: str | None, artifact_path: str | None, stacklevel: int = 4) -> str:
    """The model's path in the run's artifacts, from `name` or the deprecated
    `artifact_path` (warned about at the caller `stacklevel` frames up)."""
    if artifact_path is not None:
        warnings.warn(
            "artifact_path= is deprecated; use name= (the model's path in the run's artifacts)",
            DeprecationWarning,
            stacklevel=stacklevel,
        )
        if name is not None and name != artifact_path:
            raise InvalidInput(
                f"name={name!r} and artifact_path={artifact_path!r} disagree; pass only name",
                field="name",
            )
    chosen = (name if name is not None else artifact_path) or DEFAULT_NAME
    clean = chosen.strip("/")
    if not clean or ".." in clean.split("/") or "\\" in clean:
        raise InvalidInput(f"model name {chosen!r} is not a relative artifact path", field="name")
    return clean


def log_model(
    flavor_module: types.ModuleType | Any,
    *,
    name: str | None = None,
    artifact_path: str | None = None,
    registered_model_name: str | None = None,
    **save_kwargs: Any,
) -> ModelInfo:
    """Save with `flavor_module.save_model`, log the directory to the active run (starting
    one if none is active) under `name`, and register it if `registered_model_name` is set."""
    from ledgerflow import fluent

    artifact = artifact_name(name, artifact_path)
    run_id = fluent._run_id_for_logging()
    with tempfile.TemporaryDirectory(prefix="ledgerflow-model-") as tmp:
        local = Path(tmp) / "model"
        flavor_module.save_model(path=str(local), **save_kwargs)
        mlmodel = Model.load(local)
        mlmodel.run_id = run_id
        mlmodel.artifact_path = artifact
        mlmodel.save(local / MLMODEL_FILE_NAME)
        fluent._client().log_artifacts(run_id, local, artifact)
    version = None
    if registered_model_name is not None:
        mv = fluent.register_model(f"runs:/{run_id}/{artifact}", registered_model_name)
        version = int(mv.version)
    return ModelInfo.from_model(
        mlmodel, run_id=run_id, name=artifact, registered_model_version=version
    )
