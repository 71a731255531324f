"""A model-server replica of deployments: every variant loaded, each request routed.

The host follows the log's `deployment.*` events and folds each deployment (the same
fold as the views), so every replica routes from the same state without talking to
the others: the same key lands on the same variant in every replica. It loads and
warms each variant as its own served model (`<deployment>:<variant>`, labelled with
the variant in /metrics), unloads removed ones, and routes only among variants that
are ready; the replica itself reports ready once every variant with traffic (and
every shadow) is loaded and warmed, so a load balancer's readiness probe keeps
traffic away from a replica still loading.

Each answer is recorded as an `InferenceRecord` (variant, latency, error) through a
`TrafficRecorder`; shadow variants get a copy of the request after the answer is
returned, and their answers are recorded with whether they agreed.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Recorded, now_ms
from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound, Unavailable
from ledgerflow.events.log import Checkpoint, EventLog, Item
from ledgerflow.services.analytics.traffic import TrafficRecorder
from ledgerflow.services.deployer import routing
from ledgerflow.services.deployments.state import Deployment, apply
from ledgerflow.services.serving.predictors import Predictor
from ledgerflow.services.serving.repository import ModelRepository, ServedModel
from ledgerflow.services.serving.routing_cache import RoutingCache
from ledgerflow.services.serving.scoring import ModelRequest
from ledgerflow.services.watchdog import running

if TYPE_CHECKING:
    from ledgerflow.services.serving.loading import ModelSource

logger = logging.getLogger("ledgerflow.serving")
Loader = Callable[[d.VariantSpec], Predictor]
RECENT_REQUESTS = 100_000
"""Request ids remembered per replica to join feedback to the variant that served it."""
LOAD_RETRY_S = (1.0, 30.0)
"""A variant that failed to load (the views or the artifact store unreachable a moment) is
tried again after the first, then twice as long each time up to the second, for as long
as its deployment wants it: nothing else would load it until the deployment changes."""


def variant_loader(source: ModelSource, *, allow_pickle: bool) -> Loader:
    """Loads each variant's model from `source` (the backend the deployments live in):
    its bundle when it names one, else the pyfunc model version."""

    def load_variant(spec: d.VariantSpec) -> Predictor:
        from ledgerflow.services.serving.loading import BUNDLE_PREFIX, load

        uri = (
            f"{BUNDLE_PREFIX}{spec.bundle_id}"
            if spec.bundle_id
            else f"models:/{spec.model}/{spec.version}"
        )
        return load(uri, spec.name, source=source, allow_pickle=allow_pickle).predictor

    return load_variant


def served_name(deployment: str, variant: str) -> str:
    return f"{deployment}:{variant}"


@dataclass(frozen=True, slots=True)
class Answer:
    request_id: str
    variant: str
    predictions: Any


class DeploymentHost:
    """Hosts deployments (all of them, or the one named `only`) in this process."""

    def __init__(
        self,
        log: EventLog,
        repository: ModelRepository,
        *,
        replica: str,
        recorder: TrafficRecorder | None = None,
        only: str | None = None,
        loader: Loader,
        cache: RoutingCache | None = None,
    ) -> None:
        """`loader` builds a variant's predictor (`variant_loader(source, ...)`). With a
        `cache` (Redis) and `only` one deployment, the host starts from the newest state
        another replica cached and follows the log from where that state was folded."""
        self.log = log
        self.repository = repository
        self.replica = replica
        self.recorder = recorder
        self.only = only
        self.loader = loader
        self.cache = cache if only is not None else None
        self.deployments: dict[str, Deployment] = {}
        self.load_errors: dict[str, str] = {}
        self._loaded: dict[str, d.VariantSpec] = {}
        self._recent: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._checkpoint = Checkpoint()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reconciling: dict[str, asyncio.Task[None]] = {}
        self._dirty: set[str] = set()
        self._shadow_tasks: set[asyncio.Task[None]] = set()
        self._retry_in: dict[str, float] = {}
        self._retries: dict[str, asyncio.TimerHandle] = {}

    # following the deployments -------------------------------------------------------
    async def start(self) -> DeploymentHost:
        """Fold what the log holds now, then follow it in a thread; variants load (in the
        background) on the running loop."""
        self._loop = asyncio.get_running_loop()
        if self.cache is not None and self.only is not None:
            cached = await self._loop.run_in_executor(None, self.cache.load, self.only)
            if cached is not None:
                self.deployments[self.only], self._checkpoint = cached
        await self._loop.run_in_executor(None, lambda: self._follow(follow=False))
        for name in list(self.deployments):
            self._schedule(name)
        self._thread = threading.Thread(target=self._run, name="deployment-follower", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        """False once the thread following the deployments died (routing would freeze)."""
        return running(self._thread, self._stop)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow(follow=True)
            except LedgerflowError as e:
                logger.warning("deployment follower: %s; retrying", e)
                self._stop.wait(1.0)

    def _follow(self, *, follow: bool) -> None:
        items = self.log.subscribe(
            self._checkpoint or None, types=["deployment.*"], stop=self._stop, follow=follow
        )
        with closing(_generator(items)) as stream:
            for item in stream:
                changed = self._apply(item)
                if changed is None:
                    continue
                if self.cache is not None:
                    self.cache.store(self.deployments[changed], self._checkpoint)
                if follow:
                    self._schedule_threadsafe(changed)

    def _apply(self, item: Item) -> str | None:
        self._checkpoint = self._checkpoint.advance(item)
        if not isinstance(item, Recorded):
            return None
        payload = item.event.data
        name = getattr(payload, "name", None)
        if not isinstance(name, str) or (self.only is not None and name != self.only):
            return None
        try:
            self.deployments[name] = apply(self.deployments.get(name), payload, item.event.time)
        except (ValueError, LedgerflowError) as e:  # the views dead-letter it as well
            logger.warning("deployment %s: %s ignored: %s", name, item.event.type, e)
            return None
        return name

    def _schedule_threadsafe(self, name: str) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._schedule, name)

    def _schedule(self, name: str) -> None:
        """Reconcile `name`'s loaded variants with its state, one pass at a time."""
        running = self._reconciling.get(name)
        if running is not None and not running.done():
            self._dirty.add(name)
            return
        self._reconciling[name] = asyncio.ensure_future(self._reconcile(name))

    async def _reconcile(self, name: str) -> None:
        while True:
            self._dirty.discard(name)
            dep = self.deployments.get(name)
            wanted = (
                {} if dep is None or dep.status == "deleted" else {v.name: v for v in dep.variants}
            )
            prefix = f"{name}:"
            for key, spec in list(self._loaded.items()):
                if key.startswith(prefix) and wanted.get(spec.name) != spec:
                    if _same_source(wanted.get(spec.name), spec):
                        continue
                    del self._loaded[key]
                    await self.repository.remove(key)
            for spec in wanted.values():
                key = served_name(name, spec.name)
                if key in self._loaded:
                    continue
                await self._load(name, key, spec)
            if name not in self._dirty:
                return

    async def _load(self, deployment: str, key: str, spec: d.VariantSpec) -> None:
        loop = asyncio.get_running_loop()
        try:
            predictor = await loop.run_in_executor(None, self.loader, spec)
        except Exception as e:
            self.load_errors[key] = f"{type(e).__name__}: {e}"
            delay = self._retry_in.get(key, LOAD_RETRY_S[0])
            self._retry_in[key] = min(2 * delay, LOAD_RETRY_S[1])
            logger.error(
                "could not load variant %s: %s; trying again in %g s",
                key, self.load_errors[key], delay,
            )  # fmt: skip
            self._retry(deployment, delay)
            return
        self.load_errors.pop(key, None)
        self._retry_in.pop(key, None)
        served = self.repository.add(
            key,
            predictor,
            version=str(spec.version),
            variant=spec.name,
            resource=("deployment", deployment),  # by its own name too, READ on the deployment
            registered=spec.model,
        )
        self._loaded[key] = spec
        await served.warm()

    def _retry(self, name: str, delay: float) -> None:
        """Reconcile `name` again in `delay` seconds (once, however many variants failed)."""
        if self._loop is None or self._stop.is_set():
            return
        pending = self._retries.get(name)
        if pending is not None:
            pending.cancel()
        self._retries[name] = self._loop.call_later(delay, self._schedule, name)

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait (up to `timeout` seconds) for the shadow copies under way to be answered and
        recorded, e.g. before a graceful stop, which cancels the ones still running."""
        pending = set(self._shadow_tasks)
        if pending:
            await asyncio.wait(pending, timeout=timeout)

    async def stop(self) -> None:
        self._stop.set()
        for handle in self._retries.values():
            handle.cancel()
        for task in [*self._reconciling.values(), *self._shadow_tasks]:
            task.cancel()
        if self._thread is not None:
            await asyncio.get_running_loop().run_in_executor(None, self._thread.join, 10)

    # readiness -----------------------------------------------------------------------
    def _ready_model(self, deployment: str, variant: str) -> ServedModel | None:
        key = served_name(deployment, variant)
        if key not in self._loaded:
            return None
        served = self.repository.get(key)
        return served if served.ready else None

    def ready(self, name: str | None = None) -> bool:
        """Every variant with traffic and every shadow of the deployment(s) loaded and warmed."""
        names = [name] if name is not None else list(self.deployments)
        if not names or (self.only is not None and self.only not in self.deployments):
            return False
        watchdog = self.repository.watchdog
        if watchdog is not None and watchdog.failures:
            return False  # a background thread died: the process is about to stop
        for n in names:
            dep = self.deployments.get(n)
            if dep is None:
                return False
            if dep.status == "deleted":
                continue
            needed = [*dep.serving, *(s.name for s in dep.shadows)]
            if any(self._ready_model(n, v) is None for v in needed):
                return False
        return True

    def variant_models(self, name: str) -> list[tuple[d.VariantSpec, ServedModel | None]]:
        """Each variant of deployment `name` with its served model once it is loaded (it
        may still be warming), or None."""
        found = []
        for spec in self.deployment(name).variants:
            key = served_name(name, spec.name)
            found.append((spec, self.repository.get(key) if key in self._loaded else None))
        return found

    def deployment(self, name: str) -> Deployment:
        dep = self.deployments.get(name)
        if dep is None or dep.status == "deleted" or (self.only is not None and name != self.only):
            raise NotFound(f"deployment {name!r} is not served here", kind="deployment", key=name)
        return dep

    # serving -------------------------------------------------------------------------
    def schema_of(self, name: str, variant: str) -> Any:
        served = self._ready_model(name, variant)
        return served.predictor.input_schema if served is not None else None

    def choose(
        self, name: str, *, key: str | None, request_id: str, forced: str | None
    ) -> routing.Route:
        """The variant (and shadows) for one request, among the variants ready here."""
        dep = self.deployment(name)
        ready = {v: w for v, w in dep.weights.items() if self._ready_model(name, v) is not None}
        if forced is None and not any(w > 0 for w in ready.values()):
            raise Unavailable(f"no variant of deployment {name!r} is ready on this replica yet")
        shadows = [s.name for s in dep.shadows if self._ready_model(name, s.name) is not None]
        known = [v.name for v in dep.variants if self._ready_model(name, v.name) is not None]
        return routing.route(
            deployment=name,
            weights=ready,
            shadows=shadows,
            key=key,
            request_id=request_id,
            forced=forced,
            known=known,
        )

    async def invoke(
        self, name: str, route: routing.Route, request: ModelRequest, request_id: str, protocol: str
    ) -> Answer:
        """Answer with the routed variant; record it; copy the request to the shadows."""
        served = self._ready_model(name, route.variant)
        if served is None:
            raise InvalidInput(f"variant {route.variant!r} is not ready", field="variant")
        arrived = now_ms()
        start = time.perf_counter()
        try:
            predictions = await served.predict(request, protocol)
        except LedgerflowError as e:
            self._record(name, request_id, route.variant, arrived, start, error=e.message)
            raise
        self._record(name, request_id, route.variant, arrived, start)
        for shadow in route.shadows:
            task = asyncio.ensure_future(
                self._shadow(name, shadow, request, predictions, request_id, arrived)
            )
            self._shadow_tasks.add(task)
            task.add_done_callback(self._shadow_tasks.discard)
        return Answer(request_id, route.variant, predictions)

    async def _shadow(
        self,
        name: str,
        variant: str,
        request: ModelRequest,
        primary: Any,
        request_id: str,
        arrived: int,
    ) -> None:
        served = self._ready_model(name, variant)
        if served is None:
            return
        start = time.perf_counter()
        try:
            answer = await served.predict(request, "shadow")
        except LedgerflowError as e:
            self._record(name, request_id, variant, arrived, start, error=e.message, shadow=True)
            return
        self._record(
            name, request_id, variant, arrived, start, shadow=True, agreed=agree(answer, primary)
        )

    def _record(
        self,
        name: str,
        request_id: str,
        variant: str,
        arrived: int,
        start: float,
        *,
        error: str | None = None,
        shadow: bool = False,
        agreed: bool | None = None,
    ) -> None:
        if not shadow:
            self._recent[request_id] = (name, variant)
            if len(self._recent) > RECENT_REQUESTS:
                self._recent.popitem(last=False)
        if self.recorder is None:
            return
        self.recorder.record(
            name,
            d.InferenceRecord(
                request_id=request_id,
                variant=variant,
                time=arrived,
                latency_ms=(time.perf_counter() - start) * 1000,
                ok=error is None,
                error=error[:500] if error else None,
                shadow=shadow,
                agreed=agreed,
            ),
        )

    def served_by(self, name: str, request_id: str) -> str | None:
        """The variant that answered `request_id` here, if this replica remembers it."""
        found = self._recent.get(request_id)
        return found[1] if found is not None and found[0] == name else None


def _same_source(wanted: d.VariantSpec | None, loaded: d.VariantSpec) -> bool:
    """A weight or shadow change keeps the loaded model; a new version or bundle reloads."""
    return wanted is not None and (wanted.model, wanted.version, wanted.bundle_id) == (
        loaded.model,
        loaded.version,
        loaded.bundle_id,
    )


def agree(a: Any, b: Any) -> bool:
    """Whether two answers are the same: equal labels, or numbers within 1e-4 relative."""
    try:
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            return bool(np.allclose(x, y, rtol=1e-4, atol=1e-6, equal_nan=True))
        return bool(np.array_equal(x, y))
    except (TypeError, ValueError):
        return bool(a == b)


def _generator(items: Iterator[Item]) -> Generator[Item, None, None]:
    yield from items
