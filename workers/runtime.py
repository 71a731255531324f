"""The one place Ledgerflow calls Ray.

Job and bundle logic talks to a `Runtime`: submit a function with resources, wait
for it, cancel it, ask how it is doing. `RayRuntime` runs it on Ray (a local Ray
started with `ray.init()` for `local`, or a cluster for `auto` / `ray://host:port`);
`InlineRuntime` runs it in a thread of this process, so that logic is testable
without a cluster. Nothing here imports Ray until a RayRuntime starts.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ledgerflow.events.errors import InvalidInput, NotFound, Timeout, Unavailable

logger = logging.getLogger("ledgerflow.workers.runtime")

State = Literal["pending", "running", "finished", "failed", "cancelled"]


@dataclass(frozen=True)
class Resources:
    """What a task needs. Zero GPUs by default; memory in bytes."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0 or (self.memory is not None and self.memory <= 0):
            raise InvalidInput(f"bad resources {self}: cpus/gpus >= 0, memory > 0")


@dataclass
class Handle:
    """A submitted task. `id` is stable text a caller can store."""

    id: str
    name: str
    ref: Any = field(repr=False, default=None)


class TaskFailed(Exception):
    """The task raised; `error` is its exception type and message, `traceback` the text."""

    def __init__(self, error: str, traceback: str = "") -> None:
        super().__init__(error)
        self.error = error
        self.traceback = traceback


class TaskCancelled(Exception):
    pass


class Runtime(Protocol):
    def start(self) -> None: ...

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        resources: Resources = ...,
        env: Mapping[str, str] | None = None,
    ) -> Handle: ...

    def result(self, handle: Handle, timeout: float | None = None) -> Any: ...

    def state(self, handle: Handle) -> State: ...

    def cancel(self, handle: Handle) -> None: ...

    def shutdown(self) -> None: ...


class RayRuntime:
    """Tasks on Ray. `address`: `local` (start Ray in this machine), `auto`, or a
    `ray://host:port` client address."""

    def __init__(self, address: str = "local", *, num_cpus: int | None = None) -> None:
        if address != "local" and address != "auto" and not address.startswith("ray://"):
            raise InvalidInput(
                f"LEDGERFLOW_RAY_ADDRESS {address!r}: expected local, auto or ray://host:port",
                field="LEDGERFLOW_RAY_ADDRESS",
            )
        self.address = address
        self.num_cpus = num_cpus
        self._ray: Any = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._ray is not None:
                return
            try:
                import ray
            except ImportError:
                raise InvalidInput(
                    "running on Ray needs the ray package: pip install 'ledgerflow[ray]'",
                    field="LEDGERFLOW_RAY_ADDRESS",
                ) from None
            if not ray.is_initialized():
                try:
                    if self.address == "local":
                        ray.init(
                            num_cpus=self.num_cpus,
                            include_dashboard=False,
                            log_to_driver=False,
                            configure_logging=False,
                        )
                    else:
                        ray.init(address=self.address, log_to_driver=False)
                except (ConnectionError, RuntimeError) as e:
                    _forget_half_started(ray)
                    raise Unavailable(
                        f"cannot reach Ray at {self.address!r}: {e}; is the cluster up?"
                    ) from e
            self._ray = ray

    @property
    def ray(self) -> Any:
        self.start()
        return self._ray

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        resources: Resources = Resources(),
        env: Mapping[str, str] | None = None,
    ) -> Handle:
        ray = self.ray
        options: dict[str, Any] = {
            "name": name,
            "num_cpus": resources.cpus,
            "num_gpus": resources.gpus,
            "max_retries": 0,
        }
        if resources.memory is not None:
            options["memory"] = resources.memory
        if env:
            options["runtime_env"] = {"env_vars": dict(env)}
        remote = ray.remote(fn).options(**options)
        ref = remote.remote(*args)
        return Handle(id=ref.hex(), name=name, ref=ref)

    def result(self, handle: Handle, timeout: float | None = None) -> Any:
        ray = self.ray
        from ray.exceptions import GetTimeoutError, RayError, RayTaskError, TaskCancelledError

        try:
            return ray.get(handle.ref, timeout=timeout)
        except GetTimeoutError:
            raise Timeout(f"task {handle.name} did not finish within {timeout:g} s") from None
        except TaskCancelledError:
            raise TaskCancelled(handle.name) from None
        except RayTaskError as e:
            cause = e.cause if e.cause is not None else e
            raise TaskFailed(f"{type(cause).__name__}: {cause}", str(e)) from None
        except RayError as e:  # the worker or its node died under the task
            raise TaskFailed(f"{type(e).__name__}: {e}") from None

    def state(self, handle: Handle) -> State:
        ready, _ = self.ray.wait([handle.ref], timeout=0)
        if not ready:
            return "running"
        try:
            self.result(handle, timeout=0)
        except TaskCancelled:
            return "cancelled"
        except TaskFailed:
            return "failed"
        return "finished"

    def cancel(self, handle: Handle) -> None:
        self.ray.cancel(handle.ref, force=True)

    def shutdown(self) -> None:
        with self._lock:
            if self._ray is not None and self.address == "local":
                self._ray.shutdown()
            self._ray = None


def _forget_half_started(ray: Any) -> None:
    """After a failed `ray.init` (a local start that timed out under load), stop what it
    left running so the next `start` begins afresh instead of finding a half-made node."""
    try:
        ray.shutdown()
    except Exception:  # nothing was left, or it is already gone
        logger.debug("ray.shutdown after a failed start", exc_info=True)


class InlineRuntime:
    """Tasks in threads of this process: the same contract, for tests without a cluster.
    Cancelling marks a task cancelled; Python cannot stop a running thread.

    The threads are daemons, as Ray's workers are other processes: a task still running
    never keeps this process from exiting (whoever runs tasks here cleans up at exit)."""

    def __init__(self, workers: int = 4) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._futures: dict[str, concurrent.futures.Future[Any]] = {}
        self._cancelled: set[str] = set()
        self._closed = False

    def start(self) -> None:
        pass

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str,
        resources: Resources = Resources(),
        env: Mapping[str, str] | None = None,
    ) -> Handle:
        if self._closed:
            raise Unavailable(f"cannot run {name}: the inline runtime is shut down")
        handle = Handle(id=uuid.uuid4().hex, name=name)
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._futures[handle.id] = future

        def run() -> None:
            with self._slots:  # at most `workers` at once; the rest wait, as on a cluster
                if not future.set_running_or_notify_cancel():
                    return
                try:
                    future.set_result(fn(*args))
                except BaseException as e:
                    future.set_exception(e)

        threading.Thread(target=run, name=f"task-{name}", daemon=True).start()
        return handle

    def _future(self, handle: Handle) -> concurrent.futures.Future[Any]:
        found = self._futures.get(handle.id)
        if found is None:
            raise NotFound(f"no task {handle.id}", kind="task", key=handle.id)
        return found

    def result(self, handle: Handle, timeout: float | None = None) -> Any:
        if handle.id in self._cancelled:
            raise TaskCancelled(handle.name)
        try:
            return self._future(handle).result(timeout)
        except concurrent.futures.TimeoutError:
            raise Timeout(f"task {handle.name} did not finish within {timeout:g} s") from None
        except concurrent.futures.CancelledError:
            raise TaskCancelled(handle.name) from None
        except Exception as e:
            import traceback

            raise TaskFailed(f"{type(e).__name__}: {e}", traceback.format_exc()) from None

    def state(self, handle: Handle) -> State:
        if handle.id in self._cancelled:
            return "cancelled"
        future = self._future(handle)
        if not future.done():
            return "running"
        return "failed" if future.exception() is not None else "finished"

    def cancel(self, handle: Handle) -> None:
        self._cancelled.add(handle.id)
        self._future(handle).cancel()

    def shutdown(self) -> None:
        self._closed = True
        for future in self._futures.values():
            future.cancel()


def runtime_for(address: str) -> Runtime:
    """The runtime LEDGERFLOW_RAY_ADDRESS names (`inline` runs tasks in this process)."""
    if address == "inline":
        return InlineRuntime()
    return RayRuntime(address)


def cluster_address() -> str | None:
    """The address of the Ray cluster this process is part of (inside a Ray task), so a
    child process can join the same cluster; None outside Ray."""
    import sys

    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    address: str = ray.get_runtime_context().gcs_address
    return address
