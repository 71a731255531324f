"""ledgerflow.sklearn.autolog(): every scikit-learn `fit` logs to a run, as MLflow's does.

Logged per fit: the estimator's `get_params()` as params, tags `estimator_name` and
`estimator_class`, training metrics (`training_score` from `score()`, and for
classifiers `training_accuracy_score`, `training_precision_score`, `training_recall_score`,
`training_f1_score`, `training_log_loss`, `training_roc_auc`; for regressors
`training_mean_squared_error`, `training_root_mean_squared_error`,
`training_mean_absolute_error`, `training_r2_score`), and the fitted model ("model").
For GridSearchCV / RandomizedSearchCV also `best_<param>` params, `best_cv_score` and the
best estimator ("best_estimator").

Fits made inside a logged fit (a Pipeline's steps, a search's candidates) are not
logged on their own. scikit-learn is not imported here: the patches go in when it is.
"""

from __future__ import annotations

import functools
import inspect
import sys
import types
from collections.abc import Callable, Mapping
from copy import deepcopy
from typing import Any

from ledgerflow import _autologging

INTEGRATION = "sklearn"
_FIT_METHODS = ("fit", "fit_transform", "fit_predict")
# Not searched for estimators; data preparation is left out as MLflow does (it is logged
# as part of a Pipeline).
_EXCLUDED_MODULES = (
    "sklearn.externals",
    "sklearn.experimental",
    "sklearn.utils",
    "sklearn.datasets",
    "sklearn.preprocessing",
    "sklearn.impute",
    "sklearn.feature_extraction",
    "sklearn.feature_selection",
)
_EXCLUDED_CLASSES = {"sklearn.compose._column_transformer.ColumnTransformer"}
_EXAMPLE_ROWS = 5
_PREFIX = "training_"


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    serialization_format: str | None = None,
    registered_model_name: str | None = None,
    pos_label: Any = None,
    extra_tags: Mapping[str, Any] | None = None,
) -> None:
    """Enable (or with `disable=True` disable) autologging of scikit-learn training.

    With no active run, each `fit` starts one and ends it; with one active, it logs
    there (unless `exclusive=True`, which then logs nothing). A failure to log is a
    warning (none when `silent=True`): training itself never fails because of it.
    `serialization_format` is passed to `ledgerflow.sklearn.log_model` (its default when
    None); `pos_label` makes precision/recall/f1 binary instead of weighted averages.
    `log_datasets` and `disable_for_unsupported_versions` are accepted for MLflow
    compatibility and do nothing.
    """
    _autologging.install(
        INTEGRATION,
        {
            "log_input_examples": log_input_examples,
            "log_model_signatures": log_model_signatures,
            "log_models": log_models,
            "disable": disable,
            "exclusive": exclusive,
            "silent": silent,
            "serialization_format": serialization_format,
            "registered_model_name": registered_model_name,
            "pos_label": pos_label,
            "extra_tags": dict(extra_tags) if extra_tags else None,
        },
        ("sklearn",),
        _patch_estimators,
    )


def _estimators() -> list[type]:
    """The estimator classes of scikit-learn's public modules, like `all_estimators()` but
    without walking every subpackage (which imports torch through array_api_compat)."""
    import importlib

    import sklearn
    from sklearn.base import BaseEstimator

    found: set[type] = set()
    for name in getattr(sklearn, "__all__", ()):
        if name.startswith("_") or f"sklearn.{name}".startswith(_EXCLUDED_MODULES):
            continue
        try:
            module = importlib.import_module(f"sklearn.{name}")
        except ImportError:  # a function (clone, ...) or an optional part
            continue
        public = getattr(module, "__all__", None) or [n for n in dir(module) if n[0] != "_"]
        for attr in public:
            try:
                obj = getattr(module, attr, None)
            except ImportError:  # experimental classes refuse until enabled
                continue
            if (
                isinstance(obj, type)
                and issubclass(obj, BaseEstimator)
                and not inspect.isabstract(obj)
                and obj.__module__.startswith("sklearn.")
                and not obj.__module__.startswith(_EXCLUDED_MODULES)
                and f"{obj.__module__}.{obj.__name__}" not in _EXCLUDED_CLASSES
            ):
                found.add(obj)
    return sorted(found, key=lambda c: (c.__module__, c.__name__))


def _patch_estimators(_sklearn: types.ModuleType) -> None:
    for cls in _estimators():
        for name in _FIT_METHODS:
            if isinstance(inspect.getattr_static(cls, name, None), types.FunctionType):
                _autologging.patch(INTEGRATION, cls, name, _wrap_fit)


def _wrap_fit(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = functools.partial(_before, original)
        return _autologging.call_autologged(INTEGRATION, original, (self, *args), kwargs, before)

    return fit


def _is_search(estimator: Any) -> bool:
    from sklearn.model_selection import GridSearchCV, RandomizedSearchCV

    return isinstance(estimator, GridSearchCV | RandomizedSearchCV)


def X_y_weight(original: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """(X, y, sample_weight) of a fit call, whatever the estimator names them."""
    bound = inspect.signature(original).bind(*args, **kwargs)
    names = [n for n in inspect.signature(original).parameters if n != "self"]
    values = bound.arguments
    extra = values.get("fit_params") or values.get("params") or values.get("kwargs") or {}
    X = values.get(names[0]) if names else None
    y = values.get(names[1]) if len(names) > 1 else None
    weight = values.get("sample_weight", extra.get("sample_weight"))
    return X, y, weight


def _before(
    original: Callable[..., Any],
    run_id: str,
    cfg: _autologging.Config,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None]]:
    estimator = args[0]
    cls = type(estimator)
    _autologging.safely(
        INTEGRATION,
        "logging params",
        _autologging.log_params,
        run_id,
        estimator.get_params(deep=not _is_search(estimator)),
    )
    tags = {"estimator_name": cls.__name__, "estimator_class": f"{cls.__module__}.{cls.__name__}"}
    _autologging.safely(INTEGRATION, "setting tags", _autologging.set_tags, run_id, tags)
    X, y, weight = X_y_weight(original, args, kwargs)
    try:
        example = deepcopy(X[:_EXAMPLE_ROWS])
    except Exception:
        example = None

    def after(_result: Any) -> None:
        if cfg["log_models"]:
            _autologging.safely(
                INTEGRATION, "logging the model", _log_model, estimator, "model", example, cfg
            )
        _autologging.safely(
            INTEGRATION,
            "logging training metrics",
            _log_metrics,
            run_id,
            estimator,
            X,
            y,
            weight,
            cfg,
        )
        if _is_search(estimator):
            _autologging.safely(
                INTEGRATION,
                "logging the search results",
                _log_search,
                run_id,
                estimator,
                example,
                cfg,
            )

    return args, kwargs, after


def _log_model(estimator: Any, name: str, example: Any, cfg: _autologging.Config) -> None:
    from ledgerflow.models.signature import infer_signature
    from ledgerflow.sklearn.fluent import log_model

    signature: Any = False
    if cfg["log_model_signatures"] and example is not None:
        try:
            method = estimator.predict if hasattr(estimator, "predict") else estimator.transform
            signature = infer_signature(example, method(deepcopy(example)))
        except Exception as e:
            _autologging.warn(INTEGRATION, "inferring the model signature", e)
    options: dict[str, Any] = {}
    if cfg["serialization_format"] is not None:
        options["serialization_format"] = cfg["serialization_format"]
    log_model(
        estimator,
        name=name,
        signature=signature,
        input_example=example if cfg["log_input_examples"] else None,
        registered_model_name=cfg["registered_model_name"] if name == "model" else None,
        **options,
    )


def training_metrics(
    integration: str, estimator: Any, X: Any, y: Any, weight: Any, pos_label: Any = None
) -> dict[str, Any]:
    """MLflow's training metrics of a fitted classifier or regressor (scikit-learn's or one
    of its API, e.g. XGBoost's) and its `score()` as `training_score`; ones that fail are
    left out with a warning of `integration`."""
    import numpy as np
    from sklearn import metrics
    from sklearn.base import is_classifier, is_regressor

    out: dict[str, Any] = {}

    def add(name: str, fn: Callable[..., Any], *a: Any, **k: Any) -> None:
        try:
            out[_PREFIX + name] = fn(*a, sample_weight=weight, **k)
        except Exception as e:
            _autologging.warn(integration, f"computing {_PREFIX + name}", e)

    if is_classifier(estimator):
        pred = estimator.predict(X)
        average = "weighted" if pos_label is None else "binary"
        for name, fn in (
            ("precision_score", metrics.precision_score),
            ("recall_score", metrics.recall_score),
            ("f1_score", metrics.f1_score),
        ):
            add(name, fn, y, pred, pos_label=pos_label, average=average)
        add("accuracy_score", metrics.accuracy_score, y, pred, normalize=True)
        if hasattr(estimator, "predict_proba"):
            proba = estimator.predict_proba(X)
            add("log_loss", metrics.log_loss, y, proba)
            score = proba[:, 1] if proba.shape[1] == 2 else proba
            add("roc_auc", metrics.roc_auc_score, y, score, average="weighted", multi_class="ovo")
    elif is_regressor(estimator):
        pred = estimator.predict(X)
        for name, fn in (
            ("mean_squared_error", metrics.mean_squared_error),
            ("mean_absolute_error", metrics.mean_absolute_error),
            ("r2_score", metrics.r2_score),
        ):
            add(name, fn, y, pred, multioutput="uniform_average")
        if _PREFIX + "mean_squared_error" in out:
            out[_PREFIX + "root_mean_squared_error"] = np.sqrt(out[_PREFIX + "mean_squared_error"])
    if hasattr(estimator, "score"):
        try:
            takes_weight = "sample_weight" in inspect.signature(estimator.score).parameters
            score_args = (X, y, weight) if takes_weight else (X, y)
            out[_PREFIX + "score"] = estimator.score(*score_args)
        except Exception as e:
            _autologging.warn(integration, "computing training_score", e)
    return out


def _log_metrics(
    run_id: str, estimator: Any, X: Any, y: Any, weight: Any, cfg: _autologging.Config
) -> None:
    if y is None:
        return  # unsupervised: nothing to score against
    values = training_metrics(INTEGRATION, estimator, X, y, weight, cfg["pos_label"])
    _autologging.log_metrics(run_id, values)


def _log_search(run_id: str, search: Any, example: Any, cfg: _autologging.Config) -> None:
    if hasattr(search, "best_params_"):
        best = {f"best_{k}": v for k, v in search.best_params_.items()}
        _autologging.log_params(run_id, best)
    if hasattr(search, "best_score_"):
        _autologging.log_metrics(run_id, {"best_cv_score": search.best_score_})
    if cfg["log_models"] and hasattr(search, "best_estimator_"):
        _log_model(search.best_estimator_, "best_estimator", example, cfg)


sys.modules[__name__].__class__ = _autologging.CallableModule
