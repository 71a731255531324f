"""The scikit-learn flavor's format: save a model directory, load one (the estimator, or
its pyfunc face), under the pickle policy the caller passes. What workers and model
servers import; `ledgerflow.sklearn.fluent` adds the session (log_model, load_model)."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.models import flavor_io
from ledgerflow.models.model import Model
from ledgerflow.pyfunc.flavor import add_to_model

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

log = logging.getLogger("ledgerflow.sklearn")

FLAVOR_NAME = "sklearn"
LOADER_MODULE = "mlflow.sklearn"
SERIALIZATION_FORMAT_SKOPS = "skops"
SERIALIZATION_FORMAT_PICKLE = "pickle"
SERIALIZATION_FORMAT_CLOUDPICKLE = "cloudpickle"
SUPPORTED_SERIALIZATION_FORMATS = [
    SERIALIZATION_FORMAT_SKOPS,
    SERIALIZATION_FORMAT_PICKLE,
    SERIALIZATION_FORMAT_CLOUDPICKLE,
]
_SKOPS_FILE = "model.skops"
_PICKLE_FILE = "model.pkl"
_PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")


def get_default_pip_requirements(
    include_cloudpickle: bool = False, include_skops: bool = False
) -> list[str]:
    reqs = ["scikit-learn"]
    if include_cloudpickle:
        reqs.append("cloudpickle")
    if include_skops:
        reqs.append("skops")
    return reqs


def _dump(sk_model: Any, file: Path, fmt: str, trusted: list[str] | None) -> None:
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        import skops.io

        try:
            skops.io.dump(sk_model, file)
            skops.io.load(file, trusted=trusted)
        except skops.io.exceptions.UntrustedTypesFoundException as e:
            file.unlink(missing_ok=True)
            raise InvalidInput(
                f"the model uses types skops does not trust by default ({e}); if they are safe "
                "pass them as skops_trusted_types=[...], or use serialization_format='cloudpickle'",
                field="skops_trusted_types",
            ) from None
        except Exception as e:  # skops raises many kinds for objects it cannot store
            file.unlink(missing_ok=True)
            raise InvalidInput(
                f"skops cannot store this model ({type(e).__name__}: {e}); it does not support "
                "functions or classes defined outside a module's top level. Use "
                "serialization_format='cloudpickle' (loading it then runs its code)",
                field="serialization_format",
            ) from None
        return
    import cloudpickle

    lib: Any = cloudpickle if fmt == SERIALIZATION_FORMAT_CLOUDPICKLE else pickle
    with open(file, "wb") as f:
        lib.dump(sk_model, f, protocol=pickle.DEFAULT_PROTOCOL)


def save_model(
    sk_model: Any,
    path: str | os.PathLike[str],
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    mlflow_model: Model | None = None,
    serialization_format: str | None = None,
    signature: flavor_io.SignatureArg = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    conda_env: flavor_io.CondaEnv = None,
    pyfunc_predict_fn: str = "predict",
    metadata: dict[str, Any] | None = None,
    skops_trusted_types: list[str] | None = None,
) -> Model:
    """Save a fitted scikit-learn estimator (or pipeline) as a model directory at `path`."""
    import sklearn

    fmt = serialization_format or SERIALIZATION_FORMAT_SKOPS
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidInput(
            f"unknown serialization_format {fmt!r}; use one of {SUPPORTED_SERIALIZATION_FORMATS}",
            field="serialization_format",
        )
    if pyfunc_predict_fn not in _PREDICT_FNS:
        raise InvalidInput(
            f"pyfunc_predict_fn must be one of {list(_PREDICT_FNS)}, got {pyfunc_predict_fn!r}",
            field="pyfunc_predict_fn",
        )
    if fmt != SERIALIZATION_FORMAT_SKOPS:
        log.warning(
            "saving a scikit-learn model as %s: loading it will run code stored in the file; "
            "serialization_format='skops' is the safe alternative",
            fmt,
        )
    p = flavor_io.prepare_dir(path)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata
    code = flavor_io.copy_code_paths(code_paths, p)
    sub = _SKOPS_FILE if fmt == SERIALIZATION_FORMAT_SKOPS else _PICKLE_FILE
    _dump(sk_model, p / sub, fmt, skops_trusted_types)
    if callable(getattr(sk_model, pyfunc_predict_fn, None)):
        add_to_model(
            mlmodel, LOADER_MODULE, code=code, model_path=sub, predict_fn=pyfunc_predict_fn
        )
    else:
        log.warning(
            "the model has no %s(); it is saved without the python_function flavor",
            pyfunc_predict_fn,
        )
    mlmodel.add_flavor(
        FLAVOR_NAME,
        pickled_model=sub,
        sklearn_version=sklearn.__version__,
        serialization_format=fmt,
        code=code,
        skops_trusted_types=skops_trusted_types,
    )
    predict = getattr(sk_model, pyfunc_predict_fn, None)
    return flavor_io.finish_model_dir(
        p,
        mlmodel,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(
            include_cloudpickle=fmt == SERIALIZATION_FORMAT_CLOUDPICKLE,
            include_skops=fmt == SERIALIZATION_FORMAT_SKOPS,
        ),
        predict=predict if callable(predict) else None,
    )


def _load_file(file: Path, fmt: str, trusted: list[str] | None, allow_pickle: bool) -> Any:
    if fmt not in SUPPORTED_SERIALIZATION_FORMATS:
        raise InvalidInput(
            f"the model's serialization_format {fmt!r} is unknown; expected one of "
            f"{SUPPORTED_SERIALIZATION_FORMATS}"
        )
    if fmt == SERIALIZATION_FORMAT_SKOPS:
        if trusted:
            flavor_io.check_pickle_allowed(
                f"a skops model that trusts extra types {trusted} (the list comes from the model)",
                allow_pickle,
            )
        import skops.io

        try:
            return skops.io.load(file, trusted=trusted)
        except skops.io.exceptions.UntrustedTypesFoundException as e:
            raise InvalidInput(
                f"the skops model holds types not trusted by default: {e}; load only models "
                "you trust, and save them with skops_trusted_types=[...]"
            ) from None
    flavor_io.check_pickle_allowed(f"the scikit-learn model {file.name} ({fmt})", allow_pickle)
    with open(file, "rb") as f:
        if fmt == SERIALIZATION_FORMAT_PICKLE:
            return pickle.load(f)  # noqa: S301 - gated by check_pickle_allowed above
        import cloudpickle

        return cloudpickle.load(f)


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
    allow_pickle: bool,
) -> Any:
    """The scikit-learn estimator saved at `model_uri` (path, file:, or runs:/ and models:/
    looked up in `source`), unpickling only if `allow_pickle`."""
    local, conf = flavor_io.open_model(model_uri, dst_path, FLAVOR_NAME, source=source)
    return _load_file(
        local / conf["pickled_model"],
        conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE),
        conf.get("skops_trusted_types"),
        allow_pickle,
    )


class _SklearnModelWrapper:
    """The pyfunc implementation: `predict(data, params)`; `predict_proba` and friends are
    exposed too so `pyfunc_predict_fn` can select them."""

    def __init__(self, sklearn_model: Any) -> None:
        self.sklearn_model = sklearn_model
        for fn in _PREDICT_FNS[1:]:
            method = getattr(sklearn_model, fn, None)
            if method is not None:
                setattr(self, fn, method)

    def get_raw_model(self) -> Any:
        return self.sklearn_model

    def predict(self, data: Any, params: dict[str, Any] | None = None) -> Any:
        return self.sklearn_model.predict(data)


def _load_pyfunc(path: str, *, allow_pickle: bool) -> _SklearnModelWrapper:
    """Called by pyfunc.load_model with the model file (or the model directory)."""
    p = Path(path)
    model_dir = flavor_io.model_dir_of(p)
    try:
        conf = flavor_io.flavor_conf(model_dir, FLAVOR_NAME)
    except NotFound:
        conf = {}
    if p.is_dir():
        p = p / flavor_io.flavor_conf(model_dir, "python_function")["model_path"]
    fmt = conf.get("serialization_format", SERIALIZATION_FORMAT_PICKLE)
    return _SklearnModelWrapper(_load_file(p, fmt, conf.get("skops_trusted_types"), allow_pickle))
