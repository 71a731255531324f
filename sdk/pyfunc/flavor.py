"""The `python_function` flavor's format: the MLmodel block every flavor adds to be
loadable as a generic Python function (`add_to_model`), and custom models saved to a
folder (`save_model`). Logging and loading by URI through the session are in
`ledgerflow.pyfunc.fluent`."""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.environment import CONDA_ENV_FILE_NAME, PYTHON_ENV_FILE_NAME
from ledgerflow.models.model import Model
from ledgerflow.pyfunc.loading import FLAVOR_NAME
from ledgerflow.pyfunc.model import LOADER_MODULE

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

MAIN = "loader_module"
CODE = "code"
DATA = "data"
ENV = "env"
PY_VERSION = "python_version"
PYTHON_VERSION = platform.python_version()


def add_to_model(
    model: Model,
    loader_module: str,
    data: str | None = None,
    code: str | None = None,
    env: dict[str, str] | str | None = None,
    model_config: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Model:
    """Add the `python_function` block: `loader_module._load_pyfunc(<model dir>/<data>)`
    loads it. Paths are relative to the model directory. `env` defaults to the conda.yaml
    and python_env.yaml that `finish_model_dir` writes. Use `mlflow.<flavor>` as the
    loader module of a flavor both MLflow and Ledgerflow implement."""
    params = dict(kwargs)
    params[MAIN] = loader_module
    params[PY_VERSION] = PYTHON_VERSION
    if code:
        params[CODE] = code
    if data:
        params[DATA] = data
    params[ENV] = (
        env
        if env is not None
        else {"conda": CONDA_ENV_FILE_NAME, "virtualenv": PYTHON_ENV_FILE_NAME}
    )
    if model_config:
        params["config"] = model_config
    return model.add_flavor(FLAVOR_NAME, **params)


def get_default_pip_requirements() -> list[str]:
    """What a python_model needs to load: cloudpickle, and ledgerflow for PythonModel."""
    return ["ledgerflow", "cloudpickle"]


def save_model(
    path: str | os.PathLike[str],
    python_model: Any = None,
    artifacts: Mapping[str, str | os.PathLike[str]] | None = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    loader_module: str | None = None,
    data_path: str | os.PathLike[str] | None = None,
    signature: flavor_io.SignatureArg = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    conda_env: flavor_io.CondaEnv = None,
    model_config: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    mlflow_model: Model | None = None,
    artifact_source: ArtifactSource | None = None,
) -> Model:
    """Save a custom model to `path`: either `python_model` (a PythonModel or a function,
    cloudpickled, with `artifacts` copied in), or `loader_module` + `data_path` (a module
    whose `_load_pyfunc(data_path)` loads the copied data). `artifacts` given as `runs:/`
    or `models:/` URIs are fetched from `artifact_source`."""
    if (python_model is None) == (loader_module is None):
        raise InvalidInput(
            "pass exactly one of python_model (a PythonModel or function) or loader_module "
            "(with data_path)",
            field="python_model",
        )
    if loader_module is not None and artifacts:
        raise InvalidInput("artifacts go with python_model; with loader_module use data_path")
    p = flavor_io.prepare_dir(path)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata
    predict: Callable[[Any], Any] | None = None
    if loader_module is not None:
        data = flavor_io.copy_into(data_path, p, "data") if data_path is not None else None
        add_to_model(mlmodel, loader_module, data=data, model_config=model_config, streamable=False)
        default_reqs = ["ledgerflow"]
    else:
        from ledgerflow.pyfunc.model import example_predictor, save_python_model

        conf = save_python_model(p, python_model, artifacts, artifact_source)
        add_to_model(mlmodel, LOADER_MODULE, model_config=model_config, **conf)
        default_reqs = get_default_pip_requirements()
        if input_example is not None and signature is None:
            predict = example_predictor(p, conf, model_config)
    mlmodel.flavors[FLAVOR_NAME][CODE] = flavor_io.copy_code_paths(code_paths, p)
    return flavor_io.finish_model_dir(
        p,
        mlmodel,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=default_reqs,
        predict=predict,
    )
