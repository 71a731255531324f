"""The onnx flavor's format: save a model directory, load one (the checked ModelProto, or
its pyfunc face, an onnxruntime session). What workers and model servers import;
`ledgerflow.onnx.fluent` adds the session (log_model, load_model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.onnx._runtime import ONNX_EXECUTION_PROVIDERS as ONNX_EXECUTION_PROVIDERS
from ledgerflow.onnx._runtime import OnnxModelWrapper

if TYPE_CHECKING:
    from ledgerflow.models.signature import ModelSignature
    from ledgerflow.models.uri import ArtifactSource

FLAVOR_NAME = "onnx"
LOADER_MODULE = "mlflow.onnx"  # what MLmodel names, so MLflow loads our directories
_MODEL_DATA_SUBPATH = "model.onnx"


def get_default_pip_requirements() -> list[str]:
    return ["onnx", "onnxruntime"]


def save_model(
    onnx_model: Any,
    path: str | Path,
    *,
    signature: ModelSignature | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: Any = None,
    onnx_execution_providers: list[Any] | None = None,
    onnx_session_options: dict[str, Any] | None = None,
    save_as_external_data: bool = True,
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Save an `onnx.ModelProto` as a model directory at `path`; `kwargs` go to `onnx.save_model`.

    `onnx_session_options` (threads, `execution_mode` "sequential"/"parallel",
    `graph_optimization_level`, `extra_session_config`) are applied when pyfunc loads it.
    """
    import onnx

    from ledgerflow.models import Model, flavor_io
    from ledgerflow.pyfunc.flavor import add_to_model

    if not isinstance(onnx_model, onnx.ModelProto):
        raise InvalidInput(
            f"onnx_model must be an onnx.ModelProto, not {type(onnx_model).__name__}",
            field="onnx_model",
        )
    _check_session_options(onnx_session_options)
    dst = flavor_io.prepare_dir(path)
    onnx.save_model(
        onnx_model,
        str(dst / _MODEL_DATA_SUBPATH),
        save_as_external_data=save_as_external_data,
        **kwargs,
    )
    model = Model()
    model.metadata = metadata
    add_to_model(model, loader_module=LOADER_MODULE, data=_MODEL_DATA_SUBPATH, code=None)
    conf = model.add_flavor(
        FLAVOR_NAME,
        onnx_version=onnx.__version__,
        data=_MODEL_DATA_SUBPATH,
        providers=onnx_execution_providers or list(ONNX_EXECUTION_PROVIDERS),
        onnx_session_options=onnx_session_options,
        code=None,
    ).flavors[FLAVOR_NAME]

    def predict(data: Any) -> Any:  # for the output schema, when inferring the signature
        return OnnxModelWrapper(dst / _MODEL_DATA_SUBPATH, conf).predict(data)

    flavor_io.finish_model_dir(
        dst,
        model,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(),
        predict=predict,
    )


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
) -> Any:
    """The checked `onnx.ModelProto` behind `model_uri` (a path, or a `runs:/` or `models:/`
    URI looked up in `source`). ONNX files hold no pickles: no pickle policy applies."""
    import onnx

    from ledgerflow.models import flavor_io

    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    model_file = str(local / conf["data"])
    onnx.checker.check_model(model_file)
    return onnx.load(model_file)


def _load_pyfunc(path: str | Path, model_config: dict[str, Any] | None = None) -> Any:
    """Called by `ledgerflow.pyfunc.load_model` with the path of `model.onnx`."""
    from ledgerflow.models import flavor_io

    model_file = Path(path)
    return OnnxModelWrapper(
        model_file, flavor_io.flavor_conf(flavor_io.model_dir_of(model_file), FLAVOR_NAME)
    )


def _check_session_options(options: dict[str, Any] | None) -> None:
    """The checks MLflow makes: keys are onnxruntime.SessionOptions attributes."""
    import onnxruntime

    if options is None:
        return
    if not isinstance(options, dict):
        raise InvalidInput("onnx_session_options must be a dict", field="onnx_session_options")
    for key, value in options.items():
        if key == "extra_session_config":
            if not isinstance(value, dict):
                raise InvalidInput(
                    "onnx_session_options['extra_session_config'] must be a dict of strings",
                    field="onnx_session_options",
                )
        elif not hasattr(onnxruntime.SessionOptions, key):
            raise InvalidInput(
                f"{key!r} is not an onnxruntime.SessionOptions setting",
                field="onnx_session_options",
            )
        elif key == "execution_mode" and str(value).upper() not in ("SEQUENTIAL", "PARALLEL"):
            raise InvalidInput(
                f"execution_mode must be 'sequential' or 'parallel', not {value!r}",
                field="onnx_session_options",
            )
        elif key == "graph_optimization_level" and value not in (0, 1, 2, 99):
            raise InvalidInput(
                f"graph_optimization_level must be 0, 1, 2 or 99, not {value!r}",
                field="onnx_session_options",
            )
        elif key.endswith("_num_threads") and int(value) < 0:
            raise InvalidInput(f"{key} must be >= 0, not {value!r}", field="onnx_session_options")
