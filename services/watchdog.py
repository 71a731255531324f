"""The background threads of one process, watched.

`ledgerflow server` runs the projector, the webhook dispatcher, the bundle policy
runner and the deployer as threads beside the gateway. A thread that dies (raises,
or returns before it was asked to stop) must not leave the process answering
`/health: ok` while its views go stale: the watchdog records the failure, the
health check reports it, and the process stops with a non-zero status so that a
supervisor (systemd, Kubernetes, compose's `restart:`) starts it again.

Threads that other components start and own (the gateway's event hub and read cache)
are watched by asking them (`expect`): a component whose thread died while it was not
being closed counts as a failure too, noticed within a second.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("ledgerflow.watchdog")


FAILURE_GRACE_S = 2.0
"""How long a server keeps answering (its health checks: 503) after a thread died."""


def stop_soon(server: Any, grace_s: float = FAILURE_GRACE_S) -> None:
    """Ask a uvicorn server to exit in `grace_s` (a watchdog's failure listener), so health
    checks see its 503 first."""

    def exit_now() -> None:
        server.should_exit = True

    timer = threading.Timer(grace_s, exit_now)
    timer.daemon = True
    timer.start()


def run_watched(server: Any, watchdog: Watchdog) -> None:
    """Run a uvicorn `server` until it exits, stopping it `FAILURE_GRACE_S` after one of
    `watchdog`'s threads died; then raise `ServiceFailed` if one did."""
    watchdog.on_failure(lambda *_: stop_soon(server))
    try:
        server.run()
    finally:
        watchdog.stop.set()
    watchdog.check()


def running(thread: threading.Thread | None, stop: threading.Event) -> bool:
    """What a component's `alive()` answers for a thread it owns (`Watchdog.expect`): True
    unless the thread was started and died while `stop` was not set."""
    return stop.is_set() or thread is None or thread.ident is None or thread.is_alive()


class ServiceFailed(RuntimeError):
    """A watched thread died; the process should exit non-zero."""

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = dict(failures)
        named = "; ".join(f"{name}: {why}" for name, why in failures.items())
        super().__init__(f"a background service stopped ({named}); restart the process")


class Watchdog:
    """Starts threads that share one stop event and remembers which of them died, and why."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()
        self._failures: dict[str, str] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._listeners: list[Callable[[str, str], None]] = []
        self._probes: dict[str, Callable[[], bool]] = {}
        self._probing = False

    def spawn(self, name: str, run: Callable[[threading.Event], None]) -> threading.Thread:
        """Run `run(stop)` in a daemon thread named `name`; it should return only once `stop`
        is set. Raising, or returning earlier, counts as a failure."""
        thread = threading.Thread(target=self._watch, args=(name, run), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()
        return thread

    def expect(self, name: str, alive: Callable[[], bool], every_s: float = 1.0) -> None:
        """Watch a component that runs its own thread: `alive()` answering False (its
        thread died; a component closed on purpose answers True) before `stop` is set
        counts as the failure of `name`, noticed within `every_s`."""
        with self._lock:
            self._probes[name] = alive
            start, self._probing = not self._probing, True
        if start:
            self.spawn("watchdog", lambda stop: self._probe(stop, every_s))

    def _probe(self, stop: threading.Event, every_s: float) -> None:
        while not stop.wait(every_s):
            with self._lock:
                probes = [(n, a) for n, a in self._probes.items() if n not in self._failures]
            for name, alive in probes:
                if not alive() and not stop.is_set():
                    logger.error("%s stopped: its thread died (see above for why)", name)
                    self._fail(name, "its thread died; see the process's log for why")

    def on_failure(self, listener: Callable[[str, str], None]) -> None:
        """Call `listener(name, reason)` when a watched thread dies (from that thread)."""
        with self._lock:
            self._listeners.append(listener)
            failed = list(self._failures.items())
        for name, why in failed:  # a thread that died before anyone listened
            listener(name, why)

    @property
    def failures(self) -> dict[str, str]:
        """The threads that died, by name, with the reason."""
        with self._lock:
            return dict(self._failures)

    def check(self) -> None:
        """Raise `ServiceFailed` if any watched thread died."""
        failures = self.failures
        if failures:
            raise ServiceFailed(failures)

    def join(self, timeout: float) -> None:
        """Ask every thread to stop and wait up to `timeout` seconds for each."""
        self.stop.set()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _watch(self, name: str, run: Callable[[threading.Event], None]) -> None:
        try:
            run(self.stop)
        except Exception as e:
            logger.exception("%s stopped", name)
            self._fail(name, f"{type(e).__name__}: {e}")
            return
        if not self.stop.is_set():
            logger.error("%s returned without being asked to stop", name)
            self._fail(name, "returned without being asked to stop")

    def _fail(self, name: str, why: str) -> None:
        with self._lock:
            self._failures[name] = why
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(name, why)
            except Exception:  # a listener's failure must not hide the one it was told of
                logger.exception("watchdog: a failure listener raised")
