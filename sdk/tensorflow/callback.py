"""A Keras callback that logs training to a run; autologging adds one to every `fit`.

    model.fit(x, y, epochs=5, callbacks=[ledgerflow.tensorflow.LedgerflowCallback()])

Importing this module imports Keras.
"""

from __future__ import annotations

from typing import Any

import keras

from ledgerflow import _autologging
from ledgerflow.events.errors import InvalidInput


class LedgerflowCallback(keras.callbacks.Callback):  # type: ignore[misc]
    """Logs the optimizer's settings (`opt_<name>` params) and a model summary when training
    starts, and the epoch's metrics (`loss`, `val_loss`, ...) at each epoch's end with
    step = epoch, or every `log_every_n_steps` batches with step = the optimizer's step.

    It logs to `run_id`, else to the run active when training starts (starting one if
    none is). A logging failure is reported once as a warning and logging stops: it never
    interrupts training.
    """

    def __init__(
        self,
        run_id: str | None = None,
        log_every_epoch: bool = True,
        log_every_n_steps: int | None = None,
        integration: str = "tensorflow",
    ) -> None:
        super().__init__()
        if log_every_epoch and log_every_n_steps is not None:
            raise InvalidInput(
                "log_every_n_steps must be None when log_every_epoch=True",
                field="log_every_n_steps",
            )
        if not log_every_epoch and not log_every_n_steps:
            raise InvalidInput(
                "give log_every_n_steps (a positive int) when log_every_epoch=False",
                field="log_every_n_steps",
            )
        self.run_id = run_id
        self.log_every_epoch = log_every_epoch
        self.log_every_n_steps = log_every_n_steps
        self._integration = integration
        self._broken = False

    def _safely(self, what: str, fn: Any, *args: Any) -> None:
        if self._broken:
            return
        try:
            fn(*args)
        except Exception as e:
            self._broken = True
            _autologging.warn(self._integration, f"{what} (no more metrics for this fit)", e)

    def _run(self) -> str:
        if self.run_id is None:
            from ledgerflow import fluent

            self.run_id = fluent._run_id_for_logging()
        return self.run_id

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self._safely("logging the optimizer and model summary", self._log_model_info)

    def _log_model_info(self) -> None:
        from ledgerflow import fluent

        run_id = self._run()
        optimizer = getattr(self.model, "optimizer", None)
        if optimizer is not None:
            config = optimizer.get_config()
            _autologging.log_params(run_id, {f"opt_{k}": v for k, v in config.items()})
        lines: list[str] = []
        self.model.summary(print_fn=lambda line, *a, **k: lines.append(line))
        fluent._client().log_text(run_id, "\n".join(lines), "model_summary.txt")

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.log_every_epoch and logs:
            self._safely("logging epoch metrics", self._log, logs, epoch)

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.log_every_n_steps is None or not logs:
            return
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.log_every_n_steps == 0:
            self._safely("logging step metrics", self._log, logs, step)

    def _log(self, logs: dict[str, Any], step: int) -> None:
        _autologging.log_metrics(self._run(), logs, step=step)


MlflowCallback = LedgerflowCallback  # the name MLflow code uses
