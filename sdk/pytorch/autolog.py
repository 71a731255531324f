"""`ledgerflow.pytorch.autolog()`: log PyTorch Lightning training as MLflow 3.17 does.

`Trainer.fit` (of `lightning` and of `pytorch_lightning`, whichever is installed) logs,
into the active run or one it starts and ends: params `epochs`, `optimizer_name` and the
first optimizer's defaults (and EarlyStopping's settings), the trainer's callback metrics
each epoch (step = epoch; every n steps too if asked), the model summary as
`model_summary.txt`, and the trained model as `model` (pickle format, with a signature
from the first training batch).

Lightning is not imported here: the patch goes in when it is imported (at once if it is).
A failure to log is a warning and never makes training fail; errors raised by training
itself propagate unchanged (a run autolog started then ends FAILED).
"""

from __future__ import annotations

import functools
import sys
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ledgerflow import _autologging
from ledgerflow.pytorch._lightning import Recorder, lightning_module, make_callback

INTEGRATION = "pytorch"
_LIBRARIES = ("lightning", "pytorch_lightning")


def autolog(
    log_every_n_epoch: int = 1,
    log_every_n_step: int | None = None,
    log_models: bool = True,
    log_datasets: bool = True,
    disable: bool = False,
    exclusive: bool = False,
    disable_for_unsupported_versions: bool = False,
    silent: bool = False,
    registered_model_name: str | None = None,
    extra_tags: Mapping[str, Any] | None = None,
    log_model_signatures: bool = True,
) -> None:
    """Enable (or with `disable=True` disable) autologging of Lightning's `Trainer.fit`.

    With no active run, each `fit` starts one and ends it; with one active, it logs there
    (unless `exclusive=True`, which then logs nothing). `log_datasets` and
    `disable_for_unsupported_versions` are accepted for MLflow compatibility and do nothing.
    """
    _autologging.install(
        INTEGRATION,
        {
            "log_every_n_epoch": max(1, int(log_every_n_epoch)),
            "log_every_n_step": log_every_n_step,
            "log_models": log_models,
            "disable": disable,
            "exclusive": exclusive,
            "silent": silent,
            "registered_model_name": registered_model_name,
            "extra_tags": dict(extra_tags) if extra_tags else None,
            "log_model_signatures": log_model_signatures,
        },
        _LIBRARIES,
        _patch,
    )


def _patch(module: Any) -> None:
    package = module.__name__
    trainer_cls = lightning_module(package).Trainer
    _autologging.patch(INTEGRATION, trainer_cls, "fit", functools.partial(_wrap_fit, package))


def _wrap_fit(package: str, original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        before = functools.partial(_before, package)
        return _autologging.call_autologged(INTEGRATION, original, (self, *args), kwargs, before)

    return fit


def _before(
    package: str,
    run_id: str,
    cfg: _autologging.Config,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any], Callable[[Any], None]]:
    trainer = args[0]
    callback = make_callback(package, cfg, run_id)
    for stale in [c for c in trainer.callbacks if isinstance(c, Recorder)]:
        trainer.callbacks.remove(stale)  # left by an earlier fit of this trainer
    trainer.callbacks.append(callback)
    early_stops = _early_stopping(package, trainer)
    for early_stop in early_stops:
        _autologging.safely(
            INTEGRATION, "logging EarlyStopping params", callback.log_early_stop_params, early_stop
        )

    def after(result: Any) -> None:
        for early_stop in early_stops:
            _autologging.safely(
                INTEGRATION,
                "logging EarlyStopping metrics",
                callback.log_early_stop_metrics,
                early_stop,
            )
        _autologging.safely(
            INTEGRATION, "logging the model summary", _log_summary, package, trainer, run_id
        )
        if cfg["log_models"]:
            _autologging.safely(
                INTEGRATION, "logging the model", _log_model, trainer, callback, cfg
            )
        _autologging.safely(
            INTEGRATION, "writing TensorBoard events", _autologging.log_tensorboard_events, run_id
        )

    return args, kwargs, after


def _early_stopping(package: str, trainer: Any) -> list[Any]:
    early_stopping_cls = lightning_module(package).callbacks.EarlyStopping
    return [c for c in trainer.callbacks if isinstance(c, early_stopping_cls)]


def _log_summary(package: str, trainer: Any, run_id: str) -> None:
    from ledgerflow import fluent

    summary_cls = lightning_module(package, "utilities.model_summary").ModelSummary
    with tempfile.TemporaryDirectory() as tmp:
        summary = Path(tmp) / "model_summary.txt"
        summary.write_text(str(summary_cls(trainer.model, max_depth=-1)))
        fluent._client().log_artifact(run_id, str(summary))


def _log_model(trainer: Any, callback: Any, cfg: _autologging.Config) -> None:
    import ledgerflow as lf
    from ledgerflow.pytorch.fluent import log_model

    active = lf.active_run()
    if active is None or active.info.run_id != callback.run_id:
        raise RuntimeError(f"run {callback.run_id} is no longer the active run")
    log_model(
        trainer.model,
        name="model",
        registered_model_name=cfg["registered_model_name"],
        signature=callback.signature() if cfg["log_model_signatures"] else False,
        serialization_format="pickle",  # as MLflow: pt2 would need an input example to trace
    )


sys.modules[__name__].__class__ = _autologging.CallableModule
