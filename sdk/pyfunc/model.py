"""Custom Python models (`PythonModel`), stored as MLflow stores them.

The instance is cloudpickled to `python_model.pkl`, its artifacts copied under
`artifacts/`, and the flavor block names `loader_module: mlflow.pyfunc.model`. MLflow
loads such a directory with its own `mlflow.pyfunc.model`, Ledgerflow with this
module (the mapping `mlflow.<x>` -> `ledgerflow.<x>`), so either side loads the
other's. Unpickling runs code: it is refused when LEDGERFLOW_ALLOW_PICKLE=false.
"""

from __future__ import annotations

import bz2
import gzip
import inspect
import lzma
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import cloudpickle

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

PYTHON_MODEL_FILE = "python_model.pkl"
LOADER_MODULE = "mlflow.pyfunc.model"
_OPENERS: dict[str, Callable[..., Any]] = {"lzma": lzma.open, "bzip2": bz2.open, "gzip": gzip.open}


class _TypeHints(NamedTuple):
    input: Any = None
    output: Any = None


class PythonModelContext:
    """What `load_context` and `predict` get: local paths of the model's artifacts, and
    its configuration."""

    def __init__(self, artifacts: dict[str, str], model_config: dict[str, Any] | None) -> None:
        self._artifacts = artifacts
        self._model_config = model_config

    @property
    def artifacts(self) -> dict[str, str]:
        return self._artifacts

    @property
    def model_config(self) -> dict[str, Any] | None:
        return self._model_config


class PythonModel:
    """Subclass it for a model with custom code:

        class AddN(PythonModel):
            def __init__(self, n): self.n = n
            def predict(self, context, model_input, params=None):
                return model_input + self.n

    `context` may be left out of `predict`'s parameters, as in MLflow.
    """

    def load_context(self, context: PythonModelContext) -> None:
        """Called once after loading, to read artifacts; does nothing by default."""

    def predict(
        self, context: PythonModelContext, model_input: Any, params: dict[str, Any] | None = None
    ) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement predict()")

    @property
    def predict_type_hints(self) -> _TypeHints:
        """What MLflow's loader asks a python model for; Ledgerflow checks signatures instead."""
        return _TypeHints()


class _FunctionPythonModel(PythonModel):
    """A plain function saved as a model: `predict(model_input, params=None)` calls it."""

    def __init__(self, func: Callable[..., Any]) -> None:
        self.func = func

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:  # type: ignore[override]
        return self.func(model_input)


def _takes_context(params: Mapping[str, inspect.Parameter]) -> bool:
    return "context" in params or len([p for p in params if p not in ("self", "params")]) == 2


class PythonModelWrapper:
    """The pyfunc implementation of a PythonModel: `predict(data, params)` calls the user's
    `predict`, passing the context and params only where it takes them."""

    def __init__(self, python_model: Any, context: PythonModelContext) -> None:
        self.python_model = python_model
        self.context = context
        self._parameters: Mapping[str, inspect.Parameter] | None = None  # predict's, once

    def get_raw_model(self) -> Any:
        return self.python_model

    def predict(self, model_input: Any, params: dict[str, Any] | None = None) -> Any:
        if self._parameters is None:
            self._parameters = inspect.signature(self.python_model.predict).parameters
        parameters = self._parameters
        kwargs = {"params": params} if "params" in parameters else {}
        if _takes_context(parameters):
            return self.python_model.predict(self.context, model_input, **kwargs)
        return self.python_model.predict(model_input, **kwargs)


def save_python_model(
    path: Path,
    python_model: Any,
    artifacts: Mapping[str, str | os.PathLike[str]] | None,
    source: ArtifactSource | None = None,
) -> dict[str, Any]:
    """Pickle `python_model` and copy its artifacts (local paths, or URIs looked up in
    `source`) into `path`; return the flavor keys."""
    if not hasattr(python_model, "predict") and callable(python_model):
        python_model = _FunctionPythonModel(python_model)
    if not callable(getattr(python_model, "predict", None)):
        raise InvalidInput(
            "python_model must be a PythonModel (an object with predict()) or a function, got "
            f"{type(python_model).__name__}",
            field="python_model",
        )
    try:
        with open(path / PYTHON_MODEL_FILE, "wb") as f:
            cloudpickle.dump(python_model, f)
    except Exception as e:  # cloudpickle raises whatever the object's reducers raise
        raise InvalidInput(
            f"could not pickle python_model ({type(e).__name__}: {e}); keep unpicklable state "
            "(open files, connections, locks) out of the model and create it in load_context"
        ) from None
    conf: dict[str, Any] = {
        "cloudpickle_version": cloudpickle.__version__,
        "python_model": PYTHON_MODEL_FILE,
    }
    if artifacts:
        saved: dict[str, Any] = {}
        for name, src in artifacts.items():
            from ledgerflow.models import uri as model_uri

            local = model_uri.resolve(src, source=source)
            rel = f"artifacts/{local.name}"
            if (path / rel).exists():
                rel = f"artifacts/{name}/{local.name}"
            flavor_io.copy_into(local, path, str(Path(rel).parent))
            saved[name] = {"path": rel, "uri": os.fspath(src)}
        conf["artifacts"] = saved
    conf["streamable"] = any(
        "predict_stream" in vars(cls)
        for cls in type(python_model).__mro__
        if not cls.__module__.startswith(("mlflow.", "ledgerflow."))
    )
    return conf


def _load_pickled(file: Path, compression: str | None) -> Any:
    opener = _OPENERS.get(compression or "", open)
    with opener(file, "rb") as f:
        return cloudpickle.load(f)


def wrapper_from_dir(
    model_dir: Path, conf: dict[str, Any], model_config: dict[str, Any] | None
) -> PythonModelWrapper:
    """Unpickle the python model in `model_dir`, call its load_context, wrap it."""
    sub = conf.get("python_model")
    if not sub:
        raise InvalidInput(f"the model at {str(model_dir)!r} names no python_model file")
    python_model = _load_pickled(model_dir / sub, conf.get("compression"))
    artifacts = {
        name: str(model_dir / info["path"]) for name, info in (conf.get("artifacts") or {}).items()
    }
    context = PythonModelContext(artifacts, model_config)
    python_model.load_context(context)
    return PythonModelWrapper(python_model, context)


def example_predictor(
    model_dir: Path, conf: dict[str, Any], model_config: dict[str, Any] | None
) -> Callable[[Any], Any]:
    """Predict with a fresh copy loaded from the file just saved (the caller's object is
    left untouched), for inferring the output schema from an input example."""

    def predict(data: Any) -> Any:
        return wrapper_from_dir(model_dir, conf, model_config).predict(data)

    return predict


def _load_pyfunc(
    data_path: str, model_config: dict[str, Any] | None = None, *, allow_pickle: bool
) -> PythonModelWrapper:
    """The loader `mlflow.pyfunc.model` maps to: unpickle, call load_context, wrap."""
    model_dir = flavor_io.model_dir_of(data_path)
    conf = flavor_io.flavor_conf(model_dir, "python_function")
    flavor_io.check_pickle_allowed(
        f"the python model {conf.get('python_model')} (cloudpickle)", allow_pickle
    )
    return wrapper_from_dir(model_dir, conf, model_config)
