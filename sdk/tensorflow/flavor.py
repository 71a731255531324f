"""The tensorflow flavor's format: save a model directory (Keras `.keras`, or a tf.Module
SavedModel), load one (the model, or its pyfunc face), under the pickle policy the caller
passes. What workers and model servers import; `ledgerflow.tensorflow.fluent` adds the
session (log_model, load_model)."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.models import flavor_io
from ledgerflow.models.environment import installed_version
from ledgerflow.models.model import Model
from ledgerflow.models.signature import ModelSignature, TensorSpec
from ledgerflow.tensorflow._wrapper import _KerasModelWrapper, _TF2ModuleWrapper

if TYPE_CHECKING:
    from ledgerflow.models.uri import ArtifactSource

FLAVOR_NAME = "tensorflow"
LOADER_MODULE = "mlflow.tensorflow"  # MLflow's name; ledgerflow.pyfunc maps it to this module

_KERAS_MODEL_DATA_PATH = "data"
_MODEL_SAVE_PATH = "model"
_KERAS_MODULE_SPEC_PATH = "keras_module.txt"
_KERAS_SAVE_FORMAT_PATH = "save_format.txt"
_CUSTOM_OBJECTS_SAVE_PATH = "custom_objects.cloudpickle"
_GLOBAL_CUSTOM_OBJECTS_SAVE_PATH = "global_custom_objects.cloudpickle"
_TF2MODEL_SUBPATH = "tf2model"
_MODEL_TYPE_KERAS = "keras"
_MODEL_TYPE_TF2_MODULE = "tf2-module"
_MODEL_TYPE_TF1_ESTIMATOR = "tf1-estimator"

log = logging.getLogger("ledgerflow.tensorflow")


def get_default_pip_requirements(include_cloudpickle: bool = False) -> list[str]:
    """What a saved model needs, pinned at save time to the installed versions."""
    tf_dist = next(
        (d for d in ("tensorflow", "tensorflow-cpu") if installed_version(d)), "tensorflow"
    )
    reqs = [tf_dist, "keras"]
    return [*reqs, "cloudpickle"] if include_cloudpickle else reqs


def _check_signature(signature: Any) -> None:
    """MLflow's rule for this flavor: tensor inputs whose first dimension is the batch."""
    if not isinstance(signature, ModelSignature) or signature.inputs is None:
        return
    fields = list(signature.inputs.inputs)
    if not fields:
        raise InvalidInput("the signature's input schema must have at least one field")
    for spec in fields:
        if not isinstance(spec, TensorSpec):
            raise InvalidInput(
                "every input of a TensorFlow model's signature must be a TensorSpec; got "
                f"{spec!r} (infer it from a numpy array, not a DataFrame)",
                field="signature",
            )
        if not spec.shape or spec.shape[0] != -1:
            raise InvalidInput(
                f"signature input {spec!r} must have -1 (any batch size) as its first dimension",
                field="signature",
            )


def _custom_objects_now() -> dict[str, Any] | None:
    """Keras' global custom objects (registered classes), which MLflow saves too."""
    try:
        from tensorflow.keras.saving import get_custom_objects

        objects: dict[str, Any] = get_custom_objects()
        return objects or None
    except Exception:
        return None


def _dump(objects: Any, path: Path) -> None:
    import cloudpickle

    with path.open("wb") as f:
        cloudpickle.dump(objects, f)


def save_model(
    model: Any,
    path: str | os.PathLike[str],
    conda_env: flavor_io.CondaEnv = None,
    code_paths: Sequence[str | os.PathLike[str]] | None = None,
    mlflow_model: Model | None = None,
    custom_objects: dict[str, Any] | None = None,
    signature: ModelSignature | bool | None = None,
    input_example: Any = None,
    pip_requirements: flavor_io.Requirements = None,
    extra_pip_requirements: flavor_io.Requirements = None,
    saved_model_kwargs: dict[str, Any] | None = None,
    keras_model_kwargs: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> None:
    """Save a Keras model (`.keras` format) or a `tf.Module` (SavedModel) to `path`.

    With an `input_example` and no signature, the signature is inferred from the example
    and the model's predictions on it (`signature=False` turns that off).
    """
    import tensorflow as tf

    if signature is True:
        raise InvalidInput("signature must be a ModelSignature, False or None", field="signature")
    _check_signature(signature)
    is_keras = isinstance(model, tf.keras.Model)
    if not is_keras and not isinstance(model, tf.Module):
        raise InvalidInput(
            f"ledgerflow.tensorflow saves Keras models and tf.Module objects, not "
            f"{type(model).__module__}.{type(model).__name__}",
            field="model",
        )
    root = flavor_io.prepare_dir(path)
    code = flavor_io.copy_code_paths(code_paths, root)
    mlmodel = mlflow_model if mlflow_model is not None else Model()
    if metadata is not None:
        mlmodel.metadata = metadata

    from ledgerflow.pyfunc.flavor import add_to_model

    pickled = False
    predict: Callable[[Any], Any]
    if is_keras:
        kwargs = dict(keras_model_kwargs or {})
        data = root / _KERAS_MODEL_DATA_PATH
        data.mkdir()
        if custom_objects is not None:
            _dump(custom_objects, data / _CUSTOM_OBJECTS_SAVE_PATH)
            pickled = True
        if (registered := _custom_objects_now()) is not None:
            _dump(registered, data / _GLOBAL_CUSTOM_OBJECTS_SAVE_PATH)
            pickled = True
        (data / _KERAS_MODULE_SPEC_PATH).write_text("tensorflow.keras")
        save_format = kwargs.get("save_format", "tf")  # MLflow's value for a .keras file
        (data / _KERAS_SAVE_FORMAT_PATH).write_text(save_format)
        kwargs.pop("save_format", None)  # Keras 3 saves by extension
        suffix = ".h5" if save_format == "h5" else ".keras"
        model.save(str(data / _MODEL_SAVE_PATH) + suffix, **kwargs)
        mlmodel.add_flavor(
            FLAVOR_NAME,
            code=code,
            data=_KERAS_MODEL_DATA_PATH,
            model_type=_MODEL_TYPE_KERAS,
            keras_version=tf.__version__,
            save_format=save_format,
        )
        add_to_model(mlmodel, loader_module=LOADER_MODULE, data=_KERAS_MODEL_DATA_PATH, code=code)

        def predict(x: Any) -> Any:
            return model.predict(x, verbose=0)
    else:
        tf.saved_model.save(model, str(root / _TF2MODEL_SUBPATH), **(saved_model_kwargs or {}))
        mlmodel.add_flavor(
            FLAVOR_NAME,
            code=code,
            saved_model_dir=_TF2MODEL_SUBPATH,
            model_type=_MODEL_TYPE_TF2_MODULE,
        )
        add_to_model(mlmodel, loader_module=LOADER_MODULE, code=code)

        def predict(x: Any) -> Any:
            return _TF2ModuleWrapper(model, None).predict(x)

    flavor_io.finish_model_dir(
        root,
        mlmodel,
        signature=signature,
        input_example=input_example,
        pip_requirements=pip_requirements,
        extra_pip_requirements=extra_pip_requirements,
        conda_env=conda_env,
        default_requirements=get_default_pip_requirements(include_cloudpickle=pickled),
        predict=predict,
    )


# loading -------------------------------------------------------------------------------------
def _flavor_conf(mlmodel: Model, where: Path) -> dict[str, Any]:
    conf = mlmodel.flavors.get("keras") or mlmodel.flavors.get(FLAVOR_NAME)
    if conf is None:
        raise InvalidInput(
            f"the model at {str(where)!r} is not a TensorFlow model (its flavors are "
            f"{sorted(mlmodel.flavors)}); load it with ledgerflow.pyfunc.load_model",
            field="model_uri",
        )
    return conf


def _model_type(mlmodel: Model, conf: dict[str, Any]) -> str:
    kind = conf.get("model_type")
    if kind is not None:
        return str(kind)
    return _MODEL_TYPE_KERAS if "keras" in mlmodel.flavors else _MODEL_TYPE_TF1_ESTIMATOR


def _load_custom_objects(data: Path, file_name: str, allow_pickle: bool) -> dict[str, Any] | None:
    path = data / file_name
    if not path.is_file():
        return None
    flavor_io.check_pickle_allowed(f"the Keras custom objects in {file_name}", allow_pickle)
    import cloudpickle

    with path.open("rb") as f:
        objects: dict[str, Any] = cloudpickle.load(f)
    return objects


def _load_keras(
    data: Path, save_format: str, keras_module: str, allow_pickle: bool, **kwargs: Any
) -> Any:
    custom = dict(kwargs.pop("custom_objects", None) or {})
    for file_name in (_CUSTOM_OBJECTS_SAVE_PATH, _GLOBAL_CUSTOM_OBJECTS_SAVE_PATH):
        saved = _load_custom_objects(data, file_name, allow_pickle)
        if saved:
            custom = {**saved, **custom}
    model_path = data / _MODEL_SAVE_PATH if data.is_dir() else data
    if save_format == "h5":
        file = model_path.with_name(model_path.name + ".h5")
    elif model_path.with_name(model_path.name + ".keras").exists():
        file = model_path.with_name(model_path.name + ".keras")
    else:
        raise InvalidInput(
            f"{str(model_path)!r} is a Keras SavedModel (written by TensorFlow < 2.16), "
            "which Keras 3 cannot load; re-save it with TensorFlow >= 2.16",
            field="model_uri",
        )
    models = importlib.import_module(f"{keras_module}.models")
    return models.load_model(str(file), custom_objects=custom, **kwargs)


def load(
    model_uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    saved_model_kwargs: dict[str, Any] | None = None,
    keras_model_kwargs: dict[str, Any] | None = None,
    *,
    source: ArtifactSource | None = None,
    allow_pickle: bool,
) -> Any:
    """The Keras model (or the loaded `tf.Module`) at `model_uri`: a path, or a `runs:/...`
    or `models:/...` URI looked up in `source`, saved by Ledgerflow or by MLflow; pickled
    custom objects are loaded only if `allow_pickle`."""
    from ledgerflow.models.uri import resolve

    root = resolve(model_uri, dst_path, source=source)
    mlmodel = Model.load(root)
    conf = _flavor_conf(mlmodel, root)
    flavor_io.add_code_to_sys_path(root, conf)
    kind = _model_type(mlmodel, conf)
    if kind == _MODEL_TYPE_KERAS:
        return _load_keras(
            root / conf.get("data", _MODEL_SAVE_PATH),
            save_format=conf.get("save_format", "h5"),
            keras_module=conf.get("keras_module", "tensorflow.keras"),
            allow_pickle=allow_pickle,
            **(keras_model_kwargs or {}),
        )
    if kind == _MODEL_TYPE_TF2_MODULE:
        import tensorflow as tf

        return tf.saved_model.load(
            str(root / conf["saved_model_dir"]), **(saved_model_kwargs or {})
        )
    raise InvalidInput(f"TensorFlow model type {kind!r} is not supported", field="model_uri")


def _load_pyfunc(path: str | os.PathLike[str], *, allow_pickle: bool) -> Any:
    """Called by ledgerflow.pyfunc.load_model with the flavor's data path."""
    data = Path(path)
    root = flavor_io.model_dir_of(data)
    mlmodel = Model.load(root)
    conf = _flavor_conf(mlmodel, root)
    kind = _model_type(mlmodel, conf)
    if kind == _MODEL_TYPE_KERAS:
        spec = data / _KERAS_MODULE_SPEC_PATH
        keras_module = spec.read_text().strip() if spec.is_file() else "tensorflow.keras"
        fmt = data / _KERAS_SAVE_FORMAT_PATH
        save_format = fmt.read_text().strip() if fmt.is_file() else "h5"
        model = _load_keras(
            data, save_format, keras_module, allow_pickle, compile=save_format == "tf"
        )
        return _KerasModelWrapper(model, mlmodel.signature)
    if kind == _MODEL_TYPE_TF2_MODULE:
        import tensorflow as tf

        loaded = tf.saved_model.load(str(root / conf["saved_model_dir"]))
        return _TF2ModuleWrapper(loaded, mlmodel.signature)
    raise InvalidInput(f"TensorFlow model type {kind!r} is not supported", field="model_uri")
