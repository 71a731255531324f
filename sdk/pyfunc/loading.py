"""Load any model as a generic Python function: `load_model(uri).predict(data)`.

The MLmodel's `python_function` block names a loader module. `mlflow.<x>` maps to
Ledgerflow's own `ledgerflow.<x>`; where Ledgerflow has no such module (an MLflow
flavor we do not implement) the MLflow module is imported as written, if MLflow is
installed. Any other loader module (a custom `loader_module` model) is imported as
written. The module's `_load_pyfunc(data_path)` builds the implementation; a loader that
takes `allow_pickle` (Ledgerflow's own) gets the caller's pickle policy.

`load` is the model format's loader: `runs:/` and `models:/` URIs are looked up in the
`source` the caller passes. `ledgerflow.pyfunc.load_model` passes the session's.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.models import flavor_io, uri
from ledgerflow.models.example import load_example
from ledgerflow.models.model import Model
from ledgerflow.models.signature import enforce_params, enforce_schema

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

log = logging.getLogger("ledgerflow.models")

FLAVOR_NAME = "python_function"


def _import_loader(name: str) -> Any:
    candidates = [name]
    if name.startswith("mlflow."):
        candidates.insert(0, "ledgerflow." + name[len("mlflow.") :])
    for candidate in candidates:
        try:
            return importlib.import_module(candidate)
        except ModuleNotFoundError as e:
            # Only a missing loader module moves on; a loader whose own import fails is an error.
            if e.name is None or not candidate.startswith(e.name):
                raise
    hint = (
        "; Ledgerflow does not implement this flavor: install mlflow to load it"
        if name.startswith("mlflow.")
        else "; add the module's folder to sys.path or save the model with code_paths=[...]"
    )
    raise InvalidInput(
        f"cannot import the model's loader module {name!r}{hint}", field="loader_module"
    )


class PyFuncModel:
    """A loaded model behind one call, `predict(data, params=None)`, that checks input
    against the model's signature first."""

    def __init__(
        self, metadata: Model, impl: Any, *, predict_fn: str = "predict", loader_module: str = ""
    ) -> None:
        self._metadata = metadata
        self._impl = impl
        self._predict_fn = predict_fn
        self.loader_module = loader_module
        self.input_example: Any = None
        self._takes_params: bool | None = None  # read off predict's signature once

    @property
    def metadata(self) -> Model:
        return self._metadata

    @property
    def model_impl(self) -> Any:
        return self._impl

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        sig = self._metadata.signature
        if sig is not None and sig.inputs is not None:
            data = enforce_schema(data, sig.inputs)
        checked = enforce_params(params, sig.params if sig is not None else None)
        fn = getattr(self._impl, self._predict_fn, None)
        if not callable(fn):
            raise InvalidInput(
                f"the model implementation has no {self._predict_fn}() method", field="predict_fn"
            )
        if self._takes_params is None:  # ~10 us a call: asked once, not at every predict
            try:
                arg = inspect.signature(fn).parameters.get("params")
            except (TypeError, ValueError):
                arg = None
            self._takes_params = arg is not None and arg.kind != inspect.Parameter.VAR_KEYWORD
        if self._takes_params:
            return fn(data, params=checked or None)
        if checked and params:
            raise InvalidInput(
                f"this model's {self._predict_fn}() takes no params, got {sorted(params)}"
            )
        return fn(data)

    def unwrap_python_model(self) -> Any:
        """The user's PythonModel instance inside (for models saved with python_model=)."""
        from ledgerflow.pyfunc.model import PythonModelWrapper

        if isinstance(self._impl, PythonModelWrapper):
            return self._impl.python_model
        inner = getattr(self._impl, "python_model", None)  # MLflow's wrapper, if it loaded it
        if inner is not None:
            return inner
        raise InvalidInput(
            f"this model was not saved from a PythonModel (its loader is {self.loader_module!r}); "
            "use get_raw_model() for the flavor's own model"
        )

    def get_raw_model(self) -> Any:
        """The flavor's own model object (e.g. the sklearn estimator)."""
        getter = getattr(self._impl, "get_raw_model", None)
        return getter() if callable(getter) else self._impl

    def __repr__(self) -> str:
        return (
            f"PyFuncModel(loader_module={self.loader_module!r}, run_id={self._metadata.run_id!r})"
        )


def _call_loader(module: Any, data_path: str, config: dict[str, Any], allow_pickle: bool) -> Any:
    fn = module._load_pyfunc
    try:
        takes_policy = "allow_pickle" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_policy = False
    policy = {"allow_pickle": allow_pickle} if takes_policy else {}
    return fn(data_path, config, **policy) if config else fn(data_path, **policy)


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    model_config: dict[str, Any] | None = None,
    *,
    source: ArtifactSource | None = None,
    allow_pickle: bool,
) -> PyFuncModel:
    """Load the model at `model_uri` (path, file:, or runs:/ and models:/ through `source`)
    as a PyFuncModel, unpickling only if `allow_pickle`."""
    local = uri.resolve(model_uri, dst_path, source=source)
    if local.is_file() and local.name == "MLmodel":
        local = local.parent
    metadata = Model.load(local)
    conf = metadata.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise NotFound(
            f"the model at {os.fspath(model_uri)!r} has no python_function flavor (it has "
            f"{sorted(metadata.flavors)}); load it with its own flavor's load_model",
            kind="flavor",
            key=FLAVOR_NAME,
        )
    loader = conf.get("loader_module")
    if not isinstance(loader, str) or not loader:
        raise InvalidInput(f"the model at {os.fspath(model_uri)!r} names no loader_module")
    flavor_io.add_code_to_sys_path(local, conf)
    data_path = str(local / conf["data"]) if conf.get("data") else str(local)
    config = {**(conf.get("config") or {}), **(model_config or {})}
    module = _import_loader(loader)
    impl = _call_loader(module, data_path, config, allow_pickle)
    model = PyFuncModel(
        metadata, impl, predict_fn=conf.get("predict_fn", "predict"), loader_module=loader
    )
    try:
        model.input_example = load_example(
            Path(local), metadata.saved_input_example_info, metadata.get_input_schema()
        )
    except (OSError, ValueError, KeyError, InvalidInput) as e:
        log.debug("could not load the input example of %s: %s", model_uri, e)
    return model
