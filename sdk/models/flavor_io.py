"""What every flavor does around its own save/load: the steps common to all of them.

A flavor's `save_model` is:

    path = flavor_io.prepare_dir(path)
    ... write the model files, build `mlmodel = Model()`, add its flavor blocks ...
    flavor_io.finish_model_dir(path, mlmodel, signature=..., input_example=...,
                               pip_requirements=..., extra_pip_requirements=...,
                               default_requirements=["scikit-learn"])

A flavor's `load` starts with `local, conf = flavor_io.open_model(...)`. Loading takes
the pickle policy as an argument (`allow_pickle`, from the caller's settings) and checks
it with `check_pickle_allowed` before unpickling anything. Logging to a run is the fluent
edge's part (`ledgerflow._flavor_fluent.log_model`): nothing here knows about runs,
clients or the process session.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound
from ledgerflow.models.environment import CondaEnv as CondaEnv  # flavors' conda_env type
from ledgerflow.models.environment import (
    read_conda_env,
    resolve_requirements,
    write_environment,
)
from ledgerflow.models.example import save_example, split_example
from ledgerflow.models.model import MLMODEL_FILE_NAME, Model
from ledgerflow.models.signature import ModelSignature, infer_param_schema, infer_schema
from ledgerflow.models.uri import ArtifactSource, resolve

log = logging.getLogger("ledgerflow.models")

SignatureArg = ModelSignature | Literal[False] | None
Requirements = str | os.PathLike[str] | Sequence[str] | None


def prepare_dir(path: str | os.PathLike[str]) -> Path:
    """The model directory, created; an existing non-empty one is refused (never overwritten)."""
    p = Path(path).expanduser()
    if p.exists() and (not p.is_dir() or any(p.iterdir())):
        raise InvalidInput(
            f"cannot save a model to {str(p)!r}: it already exists and is not empty; choose a "
            "new path or remove it first",
            field="path",
        )
    p.mkdir(parents=True, exist_ok=True)
    return p


def copy_into(src: str | os.PathLike[str], model_dir: Path, subdir: str) -> str:
    """Copy a file or folder to `model_dir/subdir/<its name>`; return that relative path."""
    s = Path(src)
    if not s.exists():
        raise InvalidInput(f"{str(src)!r} does not exist", field=subdir)
    rel = f"{subdir}/{s.name}"
    dest = model_dir / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    if s.is_dir():
        shutil.copytree(s, dest, ignore=shutil.ignore_patterns("__pycache__"))
    else:
        shutil.copy2(s, dest)
    return rel


def copy_code_paths(
    code_paths: Sequence[str | os.PathLike[str]] | None, model_dir: Path
) -> str | None:
    """Copy user code into `code/` (prepended to sys.path at load); None when there is none."""
    if code_paths is None:
        return None
    if isinstance(code_paths, str | os.PathLike):
        raise InvalidInput(
            "code_paths must be a list of paths, not a single path", field="code_paths"
        )
    for c in code_paths:
        copy_into(c, model_dir, "code")
    return "code"


def add_code_to_sys_path(model_dir: Path, conf: dict[str, Any], key: str = "code") -> None:
    code = conf.get(key)
    if code:
        entry = str(model_dir / code)
        if entry not in sys.path:
            sys.path.insert(0, entry)


def flavor_conf(model_dir: Path, flavor: str) -> dict[str, Any]:
    """The MLmodel block of `flavor`, or NotFound naming the flavors the model has."""
    model = Model.load(model_dir)
    conf = model.flavors.get(flavor)
    if conf is None:
        raise NotFound(
            f"the model at {str(model_dir)!r} has no {flavor!r} flavor (it has "
            f"{sorted(model.flavors)})",
            kind="flavor",
            key=flavor,
        )
    return conf


def open_model(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None,
    flavor: str,
    *,
    source: ArtifactSource | None,
) -> tuple[Path, dict[str, Any]]:
    """The first steps of a flavor's `load`: the local model directory behind `model_uri`
    (a path, or a `runs:/` or `models:/` URI looked up in `source`), its `flavor` block, and
    the model's code on `sys.path`."""
    local = resolve(model_uri, dst_path, source=source)
    conf = flavor_conf(local, flavor)
    add_code_to_sys_path(local, conf)
    return local, conf


def model_dir_of(data_path: str | os.PathLike[str]) -> Path:
    """The model directory for a `_load_pyfunc(data_path)` argument (a file in it, or itself)."""
    p = Path(data_path)
    d = p if p.is_dir() else p.parent
    while not (d / MLMODEL_FILE_NAME).is_file() and d.parent != d:
        d = d.parent
    return d if (d / MLMODEL_FILE_NAME).is_file() else (p if p.is_dir() else p.parent)


def check_pickle_allowed(what: str, allow_pickle: bool) -> None:
    """Refuse to unpickle unless the caller's policy allows it (LEDGERFLOW_ALLOW_PICKLE):
    unpickling runs code."""
    if not allow_pickle:
        raise InvalidInput(
            f"loading {what} refused: LEDGERFLOW_ALLOW_PICKLE=false, and loading a pickle runs "
            "code stored in the model. Load only models you trust, and set "
            "LEDGERFLOW_ALLOW_PICKLE=true to allow it (or save sklearn models with "
            "serialization_format='skops').",
            field="LEDGERFLOW_ALLOW_PICKLE",
        )


def total_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _infer_from_example(
    example: Any, predict: Callable[[Any], Any] | None
) -> ModelSignature | None:
    data, params = split_example(example)
    try:
        inputs = infer_schema(data)
        param_schema = infer_param_schema(params) if params else None
    except LedgerflowError as e:
        log.warning("could not infer a signature from the input example: %s", e)
        return None
    outputs = None
    if predict is not None:
        try:
            outputs = infer_schema(predict(data))
        except Exception as e:  # the user's model may raise anything; the signature is optional
            log.warning("could not infer the output schema from the input example: %s", e)
    return ModelSignature(inputs, outputs, param_schema)


def finish_model_dir(
    path: Path,
    mlmodel: Model,
    *,
    signature: SignatureArg,
    input_example: Any,
    pip_requirements: Requirements,
    extra_pip_requirements: Requirements,
    default_requirements: list[str],
    predict: Callable[[Any], Any] | None = None,
    conda_env: CondaEnv = None,
) -> Model:
    """Write the example, signature, size, MLmodel and environment files into `path`.

    With no signature but an input example, the input schema is inferred from the
    example and, given `predict`, the output schema from its predictions (as MLflow
    does); `signature=False` turns that off. The environment is `conda_env` when given
    (a dict or a conda YAML file, instead of the requirements, as MLflow takes it).
    """
    env = None
    if conda_env is not None:
        if pip_requirements is not None or extra_pip_requirements is not None:
            raise InvalidInput(
                "pass only one of conda_env, pip_requirements and extra_pip_requirements",
                field="conda_env",
            )
        env = read_conda_env(conda_env)
    if (
        signature is not None
        and signature is not False
        and not isinstance(signature, ModelSignature)
    ):
        raise InvalidInput(
            "signature must be a ModelSignature (see ledgerflow.models.infer_signature), False "
            f"or None; got {type(signature).__name__}",
            field="signature",
        )
    if input_example is not None:
        mlmodel.saved_input_example_info = save_example(path, input_example)
        if signature is None:
            signature = _infer_from_example(input_example, predict)
    if signature:
        mlmodel.signature = signature
    mlmodel.model_size_bytes = total_size(path)
    mlmodel.save(path / MLMODEL_FILE_NAME)
    write_environment(
        path,
        resolve_requirements(default_requirements, pip_requirements, extra_pip_requirements),
        env,
    )
    return mlmodel
