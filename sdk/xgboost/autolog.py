"""ledgerflow.xgboost.autolog(): every XGBoost training logs to a run, as MLflow's does.

`xgboost.train(params, dtrain, ...)` logs:
- params: the booster params and the call's other settings (`num_boost_round`,
  `early_stopping_rounds`, `maximize`, ...), with their defaults;
- metrics: every evaluation set's metrics at every iteration, named `<set>-<metric>`
  (`train-logloss`, `valid-auc`; `@` becomes `_at_`: `ndcg@3` -> `ndcg_at_3`), step =
  iteration; with early stopping also `stopped_iteration`, `best_iteration` and the
  metrics of the best iteration at the step after the last;
- artifacts: `feature_importance_<type>.json` for each of `importance_types`;
- the Booster as "model" (its signature from the first rows of the training DMatrix).

The scikit-learn API (`XGBClassifier.fit`, `XGBRegressor.fit`, ...) logs the estimator's
`get_params()`, tags `estimator_name` and `estimator_class`, the same per-iteration
metrics and importances, the training metrics scikit-learn autologging logs
(`training_accuracy_score`, ...) and the fitted estimator as "model" in its own class.

Training never fails because of logging: a failure to log is a warning. XGBoost is not
imported here: the patches go in when it is.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from copy import deepcopy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerflow import _autologging

INTEGRATION = "xgboost"
_EXAMPLE_ROWS = 5
# train() arguments that are data or code, not settings: not logged as params
_UNLOGGED = {
    "params",
    "dtrain",
    "evals",
    "obj",
    "custom_metric",
    "evals_result",
    "xgb_model",
    "callbacks",
}

_local = threading.local()
# the first rows each DMatrix was built from: what the Booster's signature is inferred from
_examples: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()


def autolog(
    importance_types: Sequence[str] | None = None,
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    model_format: str = "ubj",
    extra_tags: Mapping[str, Any] | None = None,
) -> None:
    """Enable (or with `disable=True` disable) autologging of XGBoost training.

    With no active run, each training starts one and ends it; with one active, it logs
    there (unless `exclusive=True`, which then logs nothing). `importance_types` are the
    `Booster.get_score` types logged as artifacts (default `["weight"]`); `model_format`
    is passed to `ledgerflow.xgboost.log_model`. `log_datasets` and
    `disable_for_unsupported_versions` are accepted for MLflow compatibility and do
    nothing.
    """
    _autologging.install(
        INTEGRATION,
        {
            "importance_types": list(importance_types or ["weight"]),
            "log_input_examples": log_input_examples,
            "log_model_signatures": log_model_signatures,
            "log_models": log_models,
            "disable": disable,
            "exclusive": exclusive,
            "silent": silent,
            "registered_model_name": registered_model_name,
            "model_format": model_format,
            "extra_tags": dict(extra_tags) if extra_tags else None,
        },
        ("xgboost",),
        _patch,
    )


def _patch(_xgboost: types.ModuleType) -> None:
    import xgboost
    import xgboost.sklearn

    _autologging.patch(INTEGRATION, xgboost, "train", _wrap_train)
    # what the scikit-learn API calls: it records metrics into the fit's run
    _autologging.patch(INTEGRATION, xgboost.sklearn, "train", _wrap_fit_train)
    _autologging.patch(INTEGRATION, xgboost.DMatrix, "__init__", _wrap_dmatrix)
    for cls in _sklearn_classes(xgboost.sklearn):
        _autologging.patch(INTEGRATION, cls, "fit", _wrap_fit)


def _sklearn_classes(module: types.ModuleType) -> list[type]:
    base = module.XGBModel
    found = [
        obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and "fit" in vars(obj)
    ]
    return sorted(found, key=lambda c: c.__name__)


# -- xgboost.train --------------------------------------------------------------------------
def _wrap_train(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        before = functools.partial(_before_train, original)
        return _autologging.call_autologged(INTEGRATION, original, args, kwargs, before)

    return train


def _before_train(
    original: Callable[..., Any],
    run_id: str,
    cfg: _autologging.Config,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None]]:
    bound = inspect.signature(original).bind(*args, **kwargs)
    bound.apply_defaults()
    values = bound.arguments
    settings = {k: v for k, v in values.items() if k not in _UNLOGGED}
    params = {**(values.get("params") or {}), **settings}
    _autologging.safely(INTEGRATION, "logging params", _autologging.log_params, run_id, params)
    recorder = _Recorder(run_id)
    values["callbacks"] = [*(values.get("callbacks") or ()), recorder.callback()]
    example = _examples.get(values.get("dtrain"))

    def after(booster: Any) -> None:
        recorder.log_best(booster, bool(values.get("early_stopping_rounds")))
        _log_importances(run_id, booster, cfg)
        if cfg["log_models"]:
            _autologging.safely(INTEGRATION, "logging the model", _log_model, booster, example, cfg)

    return bound.args, bound.kwargs, after


def _wrap_dmatrix(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        data = args[0] if args else kwargs.get("data")
        original(self, *args, **kwargs)
        if data is not None and not isinstance(data, str | Path):  # a file has no rows here
            # data that cannot be sliced gives no example: the model goes without a signature
            with contextlib.suppress(Exception):
                _examples[self] = deepcopy(data[:_EXAMPLE_ROWS])

    return __init__


# -- the scikit-learn API -------------------------------------------------------------------
@dataclass
class _Fit:
    """The run a scikit-learn API fit logs to, for the train() call inside it."""

    run_id: str | None = None
    recorder: _Recorder | None = None
    early_stopping: bool = False


@contextmanager
def _fitting() -> Iterator[_Fit]:
    outer = getattr(_local, "fit", None)
    _local.fit = scope = _Fit()
    try:
        yield scope
    finally:
        _local.fit = outer


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        with _fitting() as scope:
            before = functools.partial(_before_fit, original, scope)
            return _autologging.call_autologged(
                INTEGRATION, original, (self, *args), kwargs, before
            )

    return fit


def _wrap_fit_train(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def train(*args: Any, **kwargs: Any) -> Any:
        scope: _Fit | None = getattr(_local, "fit", None)
        if scope is None or scope.run_id is None or scope.recorder is not None:
            return original(*args, **kwargs)  # not a fit being logged (or its second train)
        scope.recorder = _Recorder(scope.run_id)
        scope.early_stopping = bool(kwargs.get("early_stopping_rounds"))
        kwargs["callbacks"] = [*(kwargs.get("callbacks") or ()), scope.recorder.callback()]
        return original(*args, **kwargs)

    return train


def _before_fit(
    original: Callable[..., Any],
    scope: _Fit,
    run_id: str,
    cfg: _autologging.Config,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None]]:
    from ledgerflow.sklearn.autolog import X_y_weight

    estimator = args[0]
    cls = type(estimator)
    _autologging.safely(
        INTEGRATION, "logging params", _autologging.log_params, run_id, estimator.get_params()
    )
    tags = {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}
    _autologging.safely(INTEGRATION, "setting tags", _autologging.set_tags, run_id, tags)
    scope.run_id = run_id
    X, y, weight = X_y_weight(original, args, kwargs)
    try:
        example = deepcopy(X[:_EXAMPLE_ROWS])
    except Exception:
        example = None

    def after(_result: Any) -> None:
        if scope.recorder is not None:
            scope.recorder.log_best(estimator.get_booster(), scope.early_stopping)
        _log_importances(run_id, estimator.get_booster(), cfg)
        _autologging.safely(
            INTEGRATION, "logging training metrics", _log_training_metrics, run_id, estimator,
            X, y, weight,
        )  # fmt: skip
        if cfg["log_models"]:
            _autologging.safely(
                INTEGRATION, "logging the model", _log_model, estimator, example, cfg
            )

    return args, kwargs, after


def _log_training_metrics(run_id: str, estimator: Any, X: Any, y: Any, weight: Any) -> None:
    from ledgerflow.sklearn.autolog import training_metrics

    if y is not None:
        _autologging.log_metrics(run_id, training_metrics(INTEGRATION, estimator, X, y, weight))


# -- what both log ----------------------------------------------------------------------------
@dataclass
class _Recorder:
    """Each iteration's evaluation metrics, logged as they come and kept for early stopping."""

    run_id: str
    history: list[dict[str, float]] = field(default_factory=list)

    def callback(self) -> Any:
        import xgboost

        recorder = self

        class LedgerflowAutolog(xgboost.callback.TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                record = recorder.record
                _autologging.safely(INTEGRATION, "logging metrics", record, epoch, evals_log)
                return False  # never stops training

        return LedgerflowAutolog()

    def record(self, epoch: int, evals_log: Mapping[str, Mapping[str, Sequence[Any]]]) -> None:
        values = {
            f"{data}-{metric.replace('@', '_at_')}": _last(history)
            for data, metrics in evals_log.items()
            for metric, history in metrics.items()
        }
        self.history.append(values)
        _autologging.log_metrics(self.run_id, values, step=epoch)

    def log_best(self, booster: Any, early_stopping: bool) -> None:
        best = getattr(booster, "best_iteration", None) if early_stopping else None
        if best is None or not self.history:
            return
        stopped = len(self.history) - 1
        _autologging.safely(
            INTEGRATION, "logging the best iteration", self._log_best, int(best), stopped
        )

    def _log_best(self, best: int, stopped: int) -> None:
        _autologging.log_metrics(
            self.run_id, {"stopped_iteration": stopped, "best_iteration": best}
        )
        if best < len(self.history):
            _autologging.log_metrics(self.run_id, self.history[best], step=stopped + 1)


def _last(history: Sequence[Any]) -> float:
    value = history[-1]
    return float(value[0] if isinstance(value, tuple) else value)  # (mean, std) from cv


def _log_importances(run_id: str, booster: Any, cfg: _autologging.Config) -> None:
    for kind in cfg["importance_types"]:
        _autologging.safely(
            INTEGRATION, f"logging the {kind} feature importance", _log_importance, run_id,
            booster, kind,
        )  # fmt: skip


def _log_importance(run_id: str, booster: Any, kind: str) -> None:
    from ledgerflow import fluent

    scores = booster.get_score(importance_type=kind)
    fluent._client().log_dict(run_id, scores, f"feature_importance_{kind}.json")


def _log_model(model: Any, example: Any, cfg: _autologging.Config) -> None:
    from ledgerflow.models.signature import infer_signature
    from ledgerflow.xgboost.fluent import log_model

    signature: Any = False
    if cfg["log_model_signatures"] and example is not None:
        try:
            signature = infer_signature(example, _predict(model, deepcopy(example)))
        except Exception as e:
            _autologging.warn(INTEGRATION, "inferring the model signature", e)
    log_model(
        model,
        name="model",
        signature=signature,
        input_example=example if cfg["log_input_examples"] else None,
        registered_model_name=cfg["registered_model_name"],
        model_format=cfg["model_format"],
    )


def _predict(model: Any, example: Any) -> Any:
    import xgboost

    if isinstance(model, xgboost.Booster):
        return model.predict(xgboost.DMatrix(example))
    return model.predict(example)


sys.modules[__name__].__class__ = _autologging.CallableModule
