"""The Lightning callback autolog adds to a Trainer: params at train start, metrics per epoch
(or per n steps), and the first batch's input and output for the model signature."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ledgerflow import _autologging

if TYPE_CHECKING:
    from ledgerflow.models.signature import ModelSignature

INTEGRATION = "pytorch"


def lightning_module(package: str, sub: str = "") -> Any:
    """`package`'s module holding Trainer, Callback and callbacks (or its submodule `sub`)."""
    base = "lightning.pytorch" if package == "lightning" else package
    return importlib.import_module(f"{base}.{sub}" if sub else base)


def make_callback(package: str, config: _autologging.Config, run_id: str) -> Any:
    return _callback_class(package)(config, run_id)


def _optimizer_name(optimizer: Any) -> str:
    inner = getattr(optimizer, "_optimizer", None)  # a LightningOptimizer wraps the real one
    return type(inner if inner is not None else optimizer).__name__


class Recorder:
    """What the callback does, kept apart from Lightning's base class so that each hook
    can be made failure-proof in one place."""

    def __init__(self, config: _autologging.Config, run_id: str) -> None:
        self.config = config
        self.run_id = run_id
        self._step_metrics: set[str] = set()
        self._epoch_metrics: set[str] = set()
        self._steps_per_training_step = 1
        self._first_batch: tuple[Any, Any] | None = None
        self._patched_module: Any = None
        self._had_own_forward = False
        self._own_forward: Any = None

    # logging --------------------------------------------------------------------------
    def _log_metrics(self, trainer: Any, step: int, items: list[tuple[str, Any]]) -> None:
        if not trainer.sanity_checking:
            _autologging.log_metrics(self.run_id, dict(items), step=step)

    def train_start(self, trainer: Any, pl_module: Any) -> None:
        if self.config["log_models"] and self.config["log_model_signatures"]:
            self._patch_forward(trainer.strategy.lightning_module)
        _autologging.set_tags(self.run_id, {"Mode": "training"})
        params: dict[str, Any] = {"epochs": trainer.max_epochs}
        if trainer.optimizers:
            self._steps_per_training_step = len(trainer.optimizers)
            optimizer = trainer.optimizers[0]
            params["optimizer_name"] = _optimizer_name(optimizer)
            params.update(getattr(optimizer, "defaults", {}))
        _autologging.log_params(self.run_id, params)

    def train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        items = [(k, v) for k, v in trainer.callback_metrics.items() if k not in self._step_metrics]
        self._epoch_metrics.update(k for k, _ in items)
        if (pl_module.current_epoch + 1) % self.config["log_every_n_epoch"] == 0:
            self._log_metrics(trainer, pl_module.current_epoch, items)

    def train_batch_end(self, trainer: Any, pl_module: Any) -> None:
        every = self.config["log_every_n_step"]
        if not every:
            return
        metrics = trainer.callback_metrics
        # A metric logged on both steps and epochs appears as "x", "x_step" and "x_epoch":
        # leave "x" to the epoch log.
        items = [
            (k, v)
            for k, v in metrics.items()
            if k not in self._epoch_metrics and f"{k}_step" not in metrics
        ]
        self._step_metrics.update(k for k, _ in items)
        step = trainer.global_step
        if ((step // self._steps_per_training_step) + 1) % every == 0:
            self._log_metrics(trainer, step, items)

    def train_end(self, trainer: Any, pl_module: Any) -> None:
        self.revert_forward_patch()

    def exception(self, trainer: Any, pl_module: Any) -> None:
        self.revert_forward_patch()

    def test_end(self, trainer: Any, pl_module: Any) -> None:
        from ledgerflow import fluent

        _autologging.set_tags(self.run_id, {"Mode": "testing"})
        _autologging.log_metrics(self.run_id, dict(trainer.callback_metrics))
        fluent._buffer_flush(self.run_id)

    def log_early_stop_params(self, early_stop: Any) -> None:
        names = ("monitor", "mode", "patience", "min_delta", "stopped_epoch")
        params = {n: getattr(early_stop, n) for n in names if hasattr(early_stop, n)}
        _autologging.log_params(self.run_id, params)

    def log_early_stop_metrics(self, early_stop: Any) -> None:
        if early_stop.stopped_epoch == 0:
            return
        metrics = {
            "stopped_epoch": early_stop.stopped_epoch,
            "restored_epoch": early_stop.stopped_epoch - max(1, early_stop.patience),
        }
        if getattr(early_stop, "best_score", None) is not None:
            metrics["best_score"] = float(early_stop.best_score)
        if hasattr(early_stop, "wait_count"):
            metrics["wait_count"] = early_stop.wait_count
        _autologging.log_metrics(self.run_id, metrics)

    # the first batch, for the signature ------------------------------------------------
    def _patch_forward(self, module: Any) -> None:
        import torch

        self._patched_module = module
        self._had_own_forward = "forward" in module.__dict__
        self._own_forward = module.__dict__.get("forward")
        original = module.forward

        def forward(*inputs: Any, **kwargs: Any) -> Any:
            result = original(*inputs, **kwargs)
            if self._first_batch is None and len(inputs) == 1:
                first = inputs[0]
                if isinstance(first, torch.Tensor) and isinstance(result, torch.Tensor):
                    self._first_batch = (first.detach().cpu(), result.detach().cpu())
            return result

        module.forward = forward

    def revert_forward_patch(self) -> None:
        module, self._patched_module = self._patched_module, None
        if module is None:
            return
        if self._had_own_forward:
            module.forward = self._own_forward
        else:
            module.__dict__.pop("forward", None)

    def signature(self) -> ModelSignature | None:
        from ledgerflow.models.signature import infer_signature

        if self._first_batch is None:
            return None
        inputs, outputs = self._first_batch
        try:
            return infer_signature(inputs.numpy(), outputs.numpy())
        except Exception as e:
            _autologging.warn(INTEGRATION, "inferring the model signature", e)
            return None


def _safe(hook: Callable[..., None], what: str) -> Callable[..., None]:
    """A hook that logs on the rank-0 process only and turns a failure into a warning."""

    @functools.wraps(hook)
    def run(self: Recorder, trainer: Any, pl_module: Any, *args: Any, **kwargs: Any) -> None:
        if trainer.global_rank == 0:
            _autologging.safely(INTEGRATION, what, hook, self, trainer, pl_module)

    return run


@functools.cache
def _callback_class(package: str) -> type:
    callback_base = lightning_module(package).Callback

    class LedgerflowAutologCallback(Recorder, callback_base):  # type: ignore[misc, valid-type]
        on_train_start = _safe(Recorder.train_start, "logging params")
        on_train_epoch_end = _safe(Recorder.train_epoch_end, "logging epoch metrics")
        on_train_batch_end = _safe(Recorder.train_batch_end, "logging step metrics")
        on_train_end = _safe(Recorder.train_end, "restoring forward()")
        on_exception = _safe(Recorder.exception, "restoring forward()")
        on_test_end = _safe(Recorder.test_end, "logging test metrics")

    return LedgerflowAutologCallback
