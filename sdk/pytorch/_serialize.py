"""Write and read the `data/` folder of a pytorch model, in MLflow 3.17's layout.

data/model.pt2                 serialization_format "pt2": a torch.export archive
data/model.pth                 serialization_format "pickle": torch.save of the whole
data/pickle_module_info.txt    module (cloudpickle), or a TorchScript archive, and the
                               name of the pickle module it was written with
"""

from __future__ import annotations

import importlib
import logging
import zipfile
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from ledgerflow.events.errors import InvalidInput

log = logging.getLogger("ledgerflow.pytorch")

PICKLE = "pickle"
PT2 = "pt2"
EXPORTED_FILE = "model.pt2"
PICKLED_FILE = "model.pth"
PICKLE_MODULE_INFO_FILE = "pickle_module_info.txt"
# The name written into pickle_module_info.txt and MLmodel for our default pickle module,
# so that MLflow imports its own copy; we map it back to ours when loading.
MLFLOW_PICKLE_MODULE = "mlflow.pytorch.pickle_module"
_OUR_PICKLE_MODULE = "ledgerflow.pytorch.pickle_module"


def pickle_module_name(module: ModuleType) -> str:
    return MLFLOW_PICKLE_MODULE if module.__name__ == _OUR_PICKLE_MODULE else module.__name__


def export_pt2(
    model: Any, inputs: Sequence[Any], input_shapes: Sequence[Sequence[int]], dst: Path
) -> None:
    """`torch.export` the model on its example inputs, with every -1 dimension dynamic."""
    import numpy as np
    import torch
    from torch.export import Dim

    device = device_of(model)  # trace where the weights are (a CUDA model needs CUDA inputs)
    tensors = [(torch.from_numpy(v) if isinstance(v, np.ndarray) else v).to(device) for v in inputs]
    if len(tensors) != len(input_shapes):
        raise InvalidInput(
            f"the signature has {len(input_shapes)} input tensor(s) but the input example has "
            f"{len(tensors)}: give one example array per model input"
        )
    dynamic: list[dict[int, Any] | None] = []
    for shape, example in zip(input_shapes, tensors, strict=True):
        dims: dict[int, Any] = {}
        for i, size in enumerate(shape):
            if size != -1:
                continue
            if hasattr(Dim, "AUTO"):
                dims[i] = Dim.AUTO  # a size-1 example dimension is exported static
            elif example.shape[i] > 1:
                dims[i] = Dim(f"dim_{i}")  # shared by index: batched inputs share a batch dim
        dynamic.append(dims or None)
    try:
        program = torch.export.export(model, tuple(tensors), dynamic_shapes=dynamic)
    except Exception as e:
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise InvalidInput(
            f"torch.export could not trace the model on its input example "
            f"({type(e).__name__}: {first_line}); make forward() traceable, or save it with "
            "serialization_format='pickle'",
            field="serialization_format",
        ) from e
    torch.export.save(program, str(dst / EXPORTED_FILE))


def save_pickled(
    model: Any, dst: Path, pickle_module: ModuleType, **torch_save_kwargs: Any
) -> None:
    import torch

    log.warning(
        "Saving a pytorch model with pickle: loading it runs code from the file. Prefer "
        "serialization_format='pt2' (a torch.export graph) where the model allows."
    )
    (dst / PICKLE_MODULE_INFO_FILE).write_text(pickle_module_name(pickle_module))
    target = str(dst / PICKLED_FILE)
    if isinstance(model, torch.jit.ScriptModule):
        torch.jit.save(model, target)
    else:
        torch.save(model, target, pickle_module=pickle_module, **torch_save_kwargs)


def _import_pickle_module(name: str) -> ModuleType:
    if name in (MLFLOW_PICKLE_MODULE, _OUR_PICKLE_MODULE):
        from ledgerflow.pytorch import pickle_module

        return pickle_module
    try:
        return importlib.import_module(name)
    except ImportError as e:
        raise InvalidInput(
            f"the model was pickled with module {name!r}, which cannot be imported here: "
            "install it and load again"
        ) from e


def _is_torchscript(file: Path) -> bool:
    try:
        with zipfile.ZipFile(file) as z:
            return any(n.endswith("/constants.pkl") for n in z.namelist())
    except zipfile.BadZipFile:
        return False


def load_data_dir(
    data: Path, device: str | None = None, *, allow_pickle: bool, **torch_load_kwargs: Any
) -> Any:
    """The model in a flavor's `data/` folder (or a bare `torch.save` file), on `device`;
    a pickled one only if `allow_pickle`, a pt2 one checked to hold no pickle otherwise."""
    import torch

    from ledgerflow.models import flavor_io

    pickled = data / PICKLED_FILE if data.is_dir() else data
    if data.is_dir() and not pickled.exists():
        exported = data / EXPORTED_FILE
        if not exported.exists():
            raise InvalidInput(
                f"{data} holds neither {PICKLED_FILE} nor {EXPORTED_FILE}: is it the data folder "
                "of a pytorch model?"
            )
        if not allow_pickle:
            from ledgerflow.pytorch._pt2_safety import check_pickle_free

            check_pickle_free(exported)
        model = torch.export.load(str(exported)).module()
        if device:
            _check_exported_device(model, device)
        return model

    # Pickled (and TorchScript) models run code from the file when loaded; pt2 is the safe
    # format (`serialization_format='pt2'`).
    flavor_io.check_pickle_allowed(f"the pickled pytorch model {pickled}", allow_pickle)
    if _is_torchscript(pickled):
        jit_load: Any = torch.jit.load  # untyped in torch
        model = jit_load(str(pickled), map_location=torch_load_kwargs.get("map_location"))
    else:
        info = data / PICKLE_MODULE_INFO_FILE
        if "pickle_module" not in torch_load_kwargs and info.exists():
            torch_load_kwargs["pickle_module"] = _import_pickle_module(info.read_text().strip())
        # A whole-module pickle needs the full unpickler; the check above is the guard.
        torch_load_kwargs.setdefault("weights_only", False)
        model = torch.load(str(pickled), **torch_load_kwargs)
    model.eval()
    if device:
        model.to(device=device)
    return model


def _check_exported_device(model: Any, device: str) -> None:
    """An exported graph's tensors cannot move across devices: say so instead of failing later."""
    import itertools

    import torch

    target = torch.device(device).type
    for tensor in itertools.chain(model.parameters(), model.buffers()):
        if tensor.device.type != target:
            raise InvalidInput(
                f"this pt2 model holds tensors on '{tensor.device.type}' and cannot be loaded on "
                f"'{target}': save it from model.to('{target}') to serve it there"
            )


def default_device(data: Path, model_config: dict[str, Any] | None) -> str | None:
    """Where pyfunc runs the model: the configured device; else, for a pickled model, CUDA
    when there is one (as MLflow); None for an exported graph, which stays where it was
    saved (its tensors cannot move)."""
    import torch

    device = (model_config or {}).get("device")
    if device:
        return str(device)
    if data.is_dir() and (data / EXPORTED_FILE).exists() and not (data / PICKLED_FILE).exists():
        return None
    return "cuda" if torch.cuda.is_available() else "cpu"


def device_of(model: Any) -> str:
    """The device of the model's first parameter or buffer (cpu when it has none)."""
    import itertools

    for tensor in itertools.chain(model.parameters(), model.buffers()):
        return str(tensor.device)
    return "cpu"
