"""ledgerflow.tensorflow.autolog(): every Keras `fit` logs to a run, as MLflow's does.

Logged: the `fit` arguments as params (`epochs`, `batch_size`, `validation_split`, ...),
the optimizer's settings (`opt_name`, `opt_learning_rate`, ...), EarlyStopping's
settings, each epoch's metrics including validation ones (`loss`, `val_loss`, ...,
step = epoch), a model summary, and at the end the model itself ("model", with a
signature inferred from the first training rows).

Keras is not imported here: the patch goes in when Keras is imported (at once if it is).
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Mapping
from typing import Any

from ledgerflow import _autologging

INTEGRATION = "tensorflow"
_LIBRARY = "keras"  # Keras 3; tf.keras is the same package
_EXAMPLE_ROWS = 5  # rows of training data used to infer the signature, as MLflow
_NOT_PARAMS = {"self", "x", "y", "callbacks", "validation_data", "verbose", "sample_weight"}


def autolog(
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    keras_model_kwargs: dict[str, Any] | None = None,
    extra_tags: Mapping[str, Any] | None = None,
    log_every_epoch: bool = True,
    log_every_n_steps: int | None = None,
) -> None:
    """Enable (or with `disable=True` disable) autologging of Keras `fit`.

    With no active run, each `fit` starts one and ends it; with one active, it logs
    there (unless `exclusive=True`, which then logs nothing). A failure to log is a
    warning (none when `silent=True`): training itself never fails because of it.
    `log_datasets` and `disable_for_unsupported_versions` are accepted for MLflow
    compatibility and do nothing.
    """
    if log_every_epoch and log_every_n_steps is not None:
        from ledgerflow.events.errors import InvalidInput

        raise InvalidInput("log_every_n_steps must be None when log_every_epoch=True")
    _autologging.install(
        INTEGRATION,
        {
            "log_models": log_models,
            "disable": disable,
            "exclusive": exclusive,
            "silent": silent,
            "registered_model_name": registered_model_name,
            "log_input_examples": log_input_examples,
            "log_model_signatures": log_model_signatures,
            "keras_model_kwargs": keras_model_kwargs,
            "extra_tags": dict(extra_tags) if extra_tags else None,
            "log_every_epoch": log_every_epoch,
            "log_every_n_steps": log_every_n_steps,
        },
        (_LIBRARY,),
        _patch,
    )


def _patch(keras: Any) -> None:
    _autologging.patch(INTEGRATION, keras.Model, "fit", _wrap_fit)


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = functools.partial(_before, original)
        return _autologging.call_autologged(INTEGRATION, original, (self, *args), kwargs, before)

    return fit


def _before(
    original: Callable[..., Any],
    run_id: str,
    cfg: _autologging.Config,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None]]:
    import keras

    from ledgerflow.tensorflow.callback import LedgerflowCallback

    bound = inspect.signature(original).bind(*args, **kwargs)
    model, x = bound.arguments["self"], bound.arguments.get("x")
    everything = inspect.signature(original).bind(*args, **kwargs)
    everything.apply_defaults()
    params = {k: v for k, v in everything.arguments.items() if k not in _NOT_PARAMS}
    params.pop("kwargs", None)
    params["batch_size"] = _batch_size(params.get("batch_size"), x)

    callbacks = list(bound.arguments.get("callbacks") or [])
    early_stop = next((c for c in callbacks if isinstance(c, keras.callbacks.EarlyStopping)), None)
    if early_stop is not None:
        params.update(
            monitor=early_stop.monitor,
            min_delta=early_stop.min_delta,
            patience=early_stop.patience,
            baseline=early_stop.baseline,
            restore_best_weights=early_stop.restore_best_weights,
        )
    _autologging.safely(INTEGRATION, "logging params", _autologging.log_params, run_id, params)
    if not any(isinstance(c, LedgerflowCallback) for c in callbacks):  # else the user's logs
        callbacks.append(
            LedgerflowCallback(
                run_id,
                log_every_epoch=cfg["log_every_epoch"],
                log_every_n_steps=cfg["log_every_n_steps"],
                integration=INTEGRATION,
            )
        )
        bound.arguments["callbacks"] = callbacks
    example = _example_rows(x)

    def after(history: Any) -> None:
        if early_stop is not None:
            _autologging.safely(
                INTEGRATION, "logging EarlyStopping metrics", _log_early_stop, run_id, early_stop
            )
        if cfg["log_models"]:
            _log_model(model, example, cfg)
        _autologging.safely(
            INTEGRATION, "writing TensorBoard events", _autologging.log_tensorboard_events, run_id
        )

    return bound.args, bound.kwargs, after


def _batch_size(given: Any, x: Any) -> Any:
    """The batch size `fit` used: as given, a tf.data pipeline's, or Keras' default of 32."""
    if given is not None:
        return given
    size = getattr(x, "_batch_size", None)  # tf.data.Dataset.batch(n)
    if size is not None:
        return int(size.numpy()) if hasattr(size, "numpy") else size
    if hasattr(x, "shape") or isinstance(x, dict | list):
        return 32  # arrays, tensors and dicts of them: Keras' documented default
    return None


def _example_rows(x: Any) -> Any:
    """The first rows of the training input (array, tensor, dict, or tf.data batch)."""
    try:
        if isinstance(x, dict):
            return {k: _to_numpy(v)[:_EXAMPLE_ROWS] for k, v in x.items()}
        if hasattr(x, "take") and hasattr(x, "element_spec"):  # tf.data.Dataset
            batch = next(iter(x.take(1)))
            features = batch[0] if isinstance(batch, tuple) else batch
            return _example_rows(features)
        if hasattr(x, "shape"):
            return _to_numpy(x)[:_EXAMPLE_ROWS]
    except Exception:
        return None
    return None


def _to_numpy(v: Any) -> Any:
    import numpy as np

    return v.numpy() if hasattr(v, "numpy") else np.asarray(v)


def _log_early_stop(run_id: str, callback: Any) -> None:
    if callback.model is None or not callback.model.stop_training:
        return
    metrics: dict[str, Any] = {"stopped_epoch": callback.stopped_epoch}
    best_epoch = getattr(callback, "best_epoch", None)
    if callback.restore_best_weights and callback.best_weights is not None and best_epoch:
        metrics["restored_epoch"] = best_epoch
    _autologging.log_metrics(run_id, metrics)


def _log_model(model: Any, example: Any, cfg: _autologging.Config) -> None:
    from ledgerflow.models.signature import infer_signature
    from ledgerflow.tensorflow.fluent import log_model

    signature: Any = False
    if cfg["log_model_signatures"] and example is not None:
        stop_training = getattr(model, "stop_training", False)
        try:
            signature = infer_signature(example, model.predict(example, verbose=0))
        except Exception as e:
            _autologging.warn(INTEGRATION, "inferring the model signature", e)
        finally:
            model.stop_training = stop_training
    _autologging.safely(
        INTEGRATION,
        "logging the model",
        functools.partial(
            log_model,
            model,
            name="model",
            signature=signature,
            input_example=example if cfg["log_input_examples"] else None,
            registered_model_name=cfg["registered_model_name"],
            keras_model_kwargs=cfg["keras_model_kwargs"],
        ),
    )


sys.modules[__name__].__class__ = _autologging.CallableModule
