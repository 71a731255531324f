"""The models a server process serves, by name, each with its own batcher and metrics, and
one async `infer(model_name, data)` that every front (REST, OIP REST, gRPC, and later a
deployment's router) calls. Nothing here knows about HTTP.

A deployment runs several variants in one process by adding each as its own served model
(its own name, `variant` label and batcher) and routing a request to one of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.serving.batching import Batcher
from ledgerflow.services.serving.labels import Aliases
from ledgerflow.services.serving.metrics import ModelMetrics, ServingMetrics
from ledgerflow.services.serving.predictors import Predictor
from ledgerflow.services.serving.scoring import ModelRequest
from ledgerflow.services.watchdog import Watchdog

log = logging.getLogger("ledgerflow.serving")


class ModelFailed(InvalidInput):
    """The model raised on a request's input: the caller's input is what it could not take
    (answered 400, as MLflow's scoring server does), and the message says what it raised."""


@dataclass
class ServedModel:
    """One model (or one variant of a deployment) being served."""

    name: str
    version: str
    predictor: Predictor
    batcher: Batcher
    metrics: ModelMetrics
    variant: str = ""
    ready: bool = False
    warm_error: str | None = None
    resource: tuple[str, str] | None = None
    """(kind, key) of what a caller must READ to use it when inference needs an identity:
    its deployment, or the registered model or run it was loaded from (None: a local
    folder, which any identity may use)."""
    registered: str | None = None
    """The registered model it is a version of: its aliases are TF Serving's labels."""
    aliases: Aliases | None = None
    """The registry's aliases as they are now (the log this process follows)."""
    labels: tuple[str, ...] = ()
    """Its version's aliases when it was loaded: the labels where no aliases are followed."""

    def label_versions(self) -> Mapping[str, str]:
        """TF Serving's version labels (`/labels/<label>`) and the version each names now:
        the registered model's aliases, or the fixed labels where none are followed."""
        if self.aliases is not None and self.registered is not None:
            return {a: str(v) for a, v in self.aliases.of(self.registered).items()}
        return dict.fromkeys(self.labels, self.version)

    def label_version(self, label: str) -> str | None:
        """The version `label` names now (None: no such label)."""
        return self.label_versions().get(label)

    async def warm(self) -> None:
        """Predict once on the input example (or a synthetic input from the signature) so the
        first real request does not pay for lazy initialization; then report ready."""
        example = self.predictor.warmup_input()
        if example is not None:
            loop = asyncio.get_running_loop()
            try:
                await loop.run_in_executor(
                    self.batcher.executor, self.predictor.predict, example, None
                )
                await self.batcher.measure(example)
            except Exception as e:
                self.warm_error = f"{type(e).__name__}: {e}"
                log.warning("warm-up predict of %s failed: %s", self.name, self.warm_error)
        self.ready = True
        self.metrics.set_ready(True)

    async def predict(self, request: ModelRequest, protocol: str) -> Any:
        """The predictions for `request`, recorded in this model's metrics."""
        start = time.perf_counter()
        error: str | None = None
        try:
            return await self.batcher.submit(request)
        except InvalidInput:
            error = "bad_input"
            raise
        except Exception as e:
            error = "model_error"
            raise ModelFailed(
                f"the model failed on this input: {type(e).__name__}: {e}", field="inputs"
            ) from e
        finally:
            self.metrics.observe_request(protocol, time.perf_counter() - start, error)


@dataclass
class ModelRepository:
    """The registry of served models. `max_batch_size`/`max_wait_ms` are the defaults for
    models added without their own. `metrics` holds every served model's series (its own
    registry unless the hosting app shares one). `aliases`, where the process follows the
    registry's, make the labels of the registered models it serves. `watchdog` watches
    the process's background threads: one that died makes the process not ready."""

    max_batch_size: int = 1
    max_wait_ms: float = 0.0
    executor: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(
            max_workers=min(8, (os.cpu_count() or 1) + 2), thread_name_prefix="ledgerflow-predict"
        )
    )
    metrics: ServingMetrics = field(default_factory=ServingMetrics)
    aliases: Aliases | None = None
    watchdog: Watchdog | None = None
    _models: dict[str, ServedModel] = field(default_factory=dict)

    def add(
        self,
        name: str,
        predictor: Predictor,
        *,
        version: str = "1",
        variant: str = "",
        max_batch_size: int | None = None,
        max_wait_ms: float | None = None,
        resource: tuple[str, str] | None = None,
        labels: tuple[str, ...] = (),
        registered: str | None = None,
    ) -> ServedModel:
        """Serve `predictor` as `name`; it is not ready until `warm()` ran. A version of the
        `registered` model answers to its aliases (`labels`: the fixed ones where the
        repository follows none)."""
        if name in self._models:
            raise InvalidInput(f"a model named {name!r} is already served", field="name")
        metrics = self.metrics.model(name, version, variant)
        batcher = Batcher(
            predictor.predict,
            self.executor,
            max_batch_size=self.max_batch_size if max_batch_size is None else max_batch_size,
            max_wait_ms=self.max_wait_ms if max_wait_ms is None else max_wait_ms,
            on_batch=metrics.observe_batch,
            on_queued=metrics.observe_queued,
        )
        served = ServedModel(
            name,
            version,
            predictor,
            batcher,
            metrics,
            variant,
            resource=resource,
            registered=registered,
            aliases=self.aliases,
            labels=labels,
        )
        self._models[name] = served
        return served

    async def remove(self, name: str) -> None:
        served = self._models.pop(name, None)
        if served is not None:
            await served.batcher.close()
            self.metrics.forget(served.metrics)

    def get(self, name: str, version: str | None = None) -> ServedModel:
        served = self._models.get(name)
        if served is None:
            raise NotFound(
                f"no model named {name!r} is served here; this server has {sorted(self._models)}",
                kind="model",
                key=name,
            )
        if version is not None and version != served.version:
            raise NotFound(
                f"model {name!r} is served at version {served.version}, not {version!r}",
                kind="model_version",
                key=f"{name}/{version}",
            )
        return served

    @property
    def models(self) -> list[ServedModel]:
        return list(self._models.values())

    @property
    def ready(self) -> bool:
        """Every served model loaded and warmed (and at least one), and no background
        thread of the process dead."""
        if self.watchdog is not None and self.watchdog.failures:
            return False
        return bool(self._models) and all(m.ready for m in self._models.values())

    def default(self) -> ServedModel:
        """The model /invocations scores with: the only one served."""
        if len(self._models) != 1:
            raise NotFound(
                f"/invocations needs exactly one served model, this server has "
                f"{sorted(self._models)}; use /v2/models/<name>/infer",
                kind="model",
            )
        return next(iter(self._models.values()))

    async def warm_all(self) -> None:
        await asyncio.gather(*(m.warm() for m in self._models.values() if not m.ready))

    async def infer(
        self,
        model_name: str,
        data: Any,
        *,
        params: dict[str, Any] | None = None,
        version: str | None = None,
        protocol: str = "python",
    ) -> Any:
        """The predictions of model `model_name` for `data` (an array, a dict of arrays or a
        DataFrame), batched with other concurrent requests when its batcher allows."""
        return await self.get(model_name, version).predict(ModelRequest(data, params), protocol)

    def metrics_text(self, accept: str = "") -> tuple[bytes, str]:
        """The exposition of every served model's series, and its content type."""
        return self.metrics.text(accept)

    async def close(self) -> None:
        for m in self._models.values():
            await m.batcher.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
