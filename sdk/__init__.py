"""Ledgerflow: event-sourced experiment tracking, model registry and serving.

    import ledgerflow as lf
    with lf.start_run():
        lf.log_metric("loss", 0.1)

Importing this package is cheap: the backend, pydantic, SQLAlchemy and every ML
framework load only when first used.
"""

from __future__ import annotations

from typing import Any

from ledgerflow._version import __version__ as __version__
from ledgerflow.fluent import (
    ActiveRun,
    active_run,
    create_experiment,
    delete_experiment,
    delete_run,
    delete_tag,
    end_run,
    flush,
    get_artifact_uri,
    get_experiment,
    get_experiment_by_name,
    get_run,
    get_tracking_uri,
    last_active_run,
    log_artifact,
    log_artifacts,
    log_dict,
    log_metric,
    log_metrics,
    log_param,
    log_params,
    log_text,
    register_model,
    search_experiments,
    set_experiment,
    set_tag,
    set_tags,
    set_tracking_uri,
    start_run,
)
from ledgerflow.queries import search_runs, subscribe

_LAZY = {
    "Client": ("ledgerflow.client", "Client"),
    "MlflowClient": ("ledgerflow.client", "Client"),
    "LedgerflowError": ("ledgerflow.events.errors", "LedgerflowError"),
    "autolog": ("ledgerflow.autolog", "autolog"),
    "log_model": ("ledgerflow.flavors", "log_model"),
    "save_model": ("ledgerflow.flavors", "save_model"),
}


# Submodules reachable as attributes (`lf.pyfunc.load_model`), imported on first use.
_SUBMODULES = frozenset(
    {
        "models",
        "pyfunc",
        "sklearn",
        "pytorch",
        "tensorflow",
        "onnx",
        "xgboost",
        "tensorboard",
        "spacy",
        "crate",
        "spark",
        "webhooks",
        "jobs",
        "bundles",
        "deployments",
    }
)


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        import importlib

        submodule = importlib.import_module(f"ledgerflow.{name}")
        globals()[name] = submodule
        return submodule
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'ledgerflow' has no attribute {name!r}")


__all__ = [
    "ActiveRun",
    "Client",
    "LedgerflowError",
    "active_run",
    "autolog",
    "create_experiment",
    "delete_experiment",
    "delete_run",
    "delete_tag",
    "end_run",
    "flush",
    "get_artifact_uri",
    "get_experiment",
    "get_experiment_by_name",
    "get_run",
    "get_tracking_uri",
    "last_active_run",
    "log_artifact",
    "log_artifacts",
    "log_dict",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "log_text",
    "register_model",
    "save_model",
    "search_experiments",
    "search_runs",
    "set_experiment",
    "set_tag",
    "set_tags",
    "set_tracking_uri",
    "start_run",
    "subscribe",
]
