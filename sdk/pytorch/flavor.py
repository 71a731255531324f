"""The pytorch flavor's format: save a model directory (pt2 or pickle), load one (the
module, or its pyfunc face), under the pickle policy the caller passes. What workers and
model servers import; `ledgerflow.pytorch.fluent` adds the session (log_model,
load_model)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal

from ledgerflow.events.errors import InvalidInput
from ledgerflow.pytorch import _serialize

if TYPE_CHECKING:
    from ledgerflow.models.signature import ModelSignature
    from ledgerflow.models.uri import ArtifactSource

log = logging.getLogger("ledgerflow.pytorch")

FLAVOR_NAME = "pytorch"
LOADER_MODULE = "mlflow.pytorch"  # what MLmodel names, so MLflow loads our directories
_MODEL_DATA_SUBPATH = "data"


def get_default_pip_requirements() -> list[str]:
    """What a saved model needs at minimum (cloudpickle is the default pickle module)."""
    return ["torch", "cloudpickle"]


def save_model(
    pytorch_model: Any,
    path: str | Path,
    *,
    code_paths: list[str] | None = None,
    pickle_module: ModuleType | None = None,
    signature: ModelSignature | Literal[False] | None = None,
    input_example: Any = None,
    pip_requirements: list[str] | str | None = None,
    extra_pip_requirements: list[str] | str | None = None,
    conda_env: Any = None,
    serialization_format: Literal["pt2", "pickle"] | None = None,
    metadata: dict[str, Any] | None = None,
    **kwargs: Any,
) -> None:
    """Save a `torch.nn.Module` (eager or scripted) as a model directory at `path`.

    `signature=False` skips inferring one from `input_example`; `kwargs` go to `torch.save`.
    """
    import torch

    from ledgerflow.models import Model, flavor_io
    from ledgerflow.pyfunc.flavor import add_to_model

    fmt = serialization_format or _serialize.PT2
    if fmt not in (_serialize.PT2, _serialize.PICKLE):
        raise InvalidInput(
            f"serialization_format must be 'pt2' or 'pickle', not {fmt!r}",
            field="serialization_format",
        )
    if not isinstance(pytorch_model, torch.nn.Module):
        raise InvalidInput(
            f"pytorch_model must be a torch.nn.Module, not {type(pytorch_model).__name__}",
            field="pytorch_model",
        )
    pickle_module = pickle_module or _default_pickle_module()
    examples = _example_arrays(input_example)
    to_save = examples[0] if examples is not None and len(examples) == 1 else None
    if to_save is None and examples is None:
        to_save = input_example  # a DataFrame or other example pyfunc understands
    if signature is None and to_save is not None:
        signature = _infer_signature(pytorch_model, to_save)
    elif signature is False:
        signature = None

    if fmt == _serialize.PT2:
        arrays, shapes = _export_inputs(pytorch_model, examples, signature)

    dst = flavor_io.prepare_dir(path)
    try:
        data = dst / _MODEL_DATA_SUBPATH
        data.mkdir()
        code = flavor_io.copy_code_paths(code_paths, dst)
        if fmt == _serialize.PT2:
            _serialize.export_pt2(pytorch_model, arrays, shapes, data)
        else:
            _serialize.save_pickled(pytorch_model, data, pickle_module, **kwargs)
    except BaseException:
        _empty(dst)  # so that the same path can be used again
        raise

    model = Model()
    model.metadata = metadata
    model.add_flavor(
        FLAVOR_NAME,
        model_data=_MODEL_DATA_SUBPATH,
        pytorch_version=str(torch.__version__),
        code=code,
    )
    if not (fmt == _serialize.PT2 and examples is not None and len(examples) > 1):
        add_to_model(
            model,
            loader_module=LOADER_MODULE,
            data=_MODEL_DATA_SUBPATH,
            code=code,
            pickle_module_name=_serialize.pickle_module_name(pickle_module),
            model_config={"device": None},
        )
    flavor_io.finish_model_dir(
        dst,
        model,
        signature=signature,
        input_example=to_save,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(),
    )


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
    allow_pickle: bool,
    **kwargs: Any,
) -> Any:
    """The torch module behind `model_uri` (a path, or a `runs:/` or `models:/` URI looked up
    in `source`), unpickling only if `allow_pickle`.

    `device=` moves it there; other `kwargs` go to `torch.load` for pickled models.
    """
    import torch

    from ledgerflow.models import flavor_io

    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    if conf.get("pytorch_version") != str(torch.__version__):
        log.warning(
            "The model was saved with torch %s; torch %s is installed",
            conf.get("pytorch_version"),
            torch.__version__,
        )
    return _serialize.load_data_dir(local / conf["model_data"], allow_pickle=allow_pickle, **kwargs)


def _load_pyfunc(
    path: str | Path,
    model_config: dict[str, Any] | None = None,
    weights_only: bool = False,
    *,
    allow_pickle: bool,
) -> Any:
    """Called by `ledgerflow.pyfunc.load_model` with the model's `data` folder."""
    from ledgerflow.pytorch._wrapper import PyTorchWrapper

    data = Path(path)
    device = _serialize.default_device(data, model_config)
    model = _serialize.load_data_dir(
        data, device=device, allow_pickle=allow_pickle, weights_only=weights_only
    )
    return PyTorchWrapper(model, device=device or _serialize.device_of(model))


def _empty(folder: Path) -> None:
    import shutil

    for child in folder.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _default_pickle_module() -> ModuleType:
    from ledgerflow.pytorch import pickle_module

    return pickle_module


def _example_arrays(example: Any) -> list[Any] | None:
    """The input example as a list of ndarrays (one per model input), or None."""
    import numpy as np
    import torch

    def as_array(x: Any) -> Any:
        return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x

    if isinstance(example, np.ndarray | torch.Tensor):
        return [as_array(example)]
    arrays = isinstance(example, list | tuple) and len(example) > 0
    if arrays and all(isinstance(x, np.ndarray | torch.Tensor) for x in example):
        return [as_array(x) for x in example]
    return None


def _infer_signature(model: Any, example: Any) -> ModelSignature | None:
    """Input schema from the example, output schema from running the model on it."""
    from ledgerflow.models.signature import infer_signature
    from ledgerflow.pytorch._wrapper import PyTorchWrapper

    try:
        output = PyTorchWrapper(model, device=_serialize.device_of(model)).predict(example)
        return infer_signature(example, output)
    except Exception as e:
        log.warning("Could not infer a signature from the input example: %s", e)
        return None


def _export_inputs(
    model: Any, examples: list[Any] | None, signature: Any
) -> tuple[list[Any], list[list[int]]]:
    """The example arrays to trace with and the signature's shape for each (-1: dynamic)."""
    import torch

    if isinstance(model, torch.jit.ScriptModule):
        raise InvalidInput(
            "a TorchScript model cannot be saved as 'pt2': pass serialization_format='pickle'",
            field="serialization_format",
        )
    if examples is None:
        raise InvalidInput(
            "serialization_format 'pt2' (the default) traces the model, so it needs "
            "input_example= (a numpy array or tensor, or a list of them, one per input); "
            "or pass serialization_format='pickle'",
            field="input_example",
        )
    inputs = signature.inputs if signature is not None else None
    if inputs is None or not inputs.is_tensor_spec() or len(inputs.inputs) < 1:
        raise InvalidInput(
            "serialization_format 'pt2' needs a tensor-based input signature (TensorSpec); "
            "give one, let it be inferred from a numpy input_example, or pass "
            "serialization_format='pickle'",
            field="signature",
        )
    return examples, [list(spec.shape) for spec in inputs.inputs]
