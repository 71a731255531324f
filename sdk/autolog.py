"""`lf.autolog()`: autologging for every supported framework that is installed.

Nothing heavy is imported here. A framework counts as installed when
`importlib.util.find_spec` finds it; its integration is switched on as soon as the
framework is imported (right away if it already is), as in MLflow.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
import types
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from ledgerflow import _autologging

# the library whose import switches an integration on -> the flavor with that autolog()
LIBRARIES: dict[str, str] = {
    "sklearn": "sklearn",
    "keras": "tensorflow",  # Keras 3 (tf.keras imports it too)
    "lightning": "pytorch",
    "pytorch_lightning": "pytorch",
    "xgboost": "xgboost",
}
_GLOBALLY = "_set_by_lf_autolog"


def autolog(
    log_input_examples: bool = False,
    log_model_signatures: bool = True,
    log_models: bool = True,
    log_datasets: bool = True,
    log_traces: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    extra_tags: Mapping[str, Any] | None = None,
    exclude_flavors: Sequence[str] | None = None,
) -> None:
    """Enable (or with `disable=True` disable) autologging for all supported frameworks.

    Each setting goes to every integration whose own `autolog()` takes it. An
    integration configured by its own `ledgerflow.<flavor>.autolog(...)` keeps that
    configuration. `exclude_flavors` names flavors to leave alone, e.g. `["sklearn"]`.
    `log_datasets`, `log_traces` and `disable_for_unsupported_versions` are accepted for
    MLflow compatibility; no integration records datasets or traces yet.
    """
    excluded = set(exclude_flavors or ())
    targets = {lib: flavor for lib, flavor in LIBRARIES.items() if flavor not in excluded}
    settings: dict[str, Any] = {
        "log_input_examples": log_input_examples,
        "log_model_signatures": log_model_signatures,
        "log_models": log_models,
        "log_datasets": log_datasets,
        "disable": disable,
        "exclusive": exclusive,
        "disable_for_unsupported_versions": disable_for_unsupported_versions,
        "silent": silent,
        "extra_tags": dict(extra_tags) if extra_tags else None,
    }
    if disable:
        _autologging.cancel_hooks(list(targets))
        for flavor in sorted(set(targets.values())):
            if f"ledgerflow.{flavor}" in sys.modules:
                _enable(flavor, settings, None, force=True)
        return
    for library, flavor in targets.items():
        if _installed(library):
            _autologging.when_imported(library, partial(_enable, flavor, settings))


def _installed(library: str) -> bool:
    try:
        return importlib.util.find_spec(library) is not None
    except (ImportError, ValueError):
        return False


def _enable(
    flavor: str, settings: dict[str, Any], _library: types.ModuleType | None, force: bool = False
) -> None:
    previous = _autologging.settings_of(flavor)
    if not force and previous is not None and not previous.get(_GLOBALLY):
        return  # configured by ledgerflow.<flavor>.autolog(): that call wins
    fn = getattr(importlib.import_module(f"ledgerflow.{flavor}"), "autolog", None)
    if fn is None:
        return
    accepted = inspect.signature(fn).parameters
    if settings["disable"] and "disable" not in accepted:
        return
    fn(**{k: v for k, v in settings.items() if k in accepted})
    cfg = _autologging.settings_of(flavor)
    if cfg is not None:
        cfg[_GLOBALLY] = True


sys.modules[__name__].__class__ = _autologging.CallableModule
