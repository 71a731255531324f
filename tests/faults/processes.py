"""Processes the fault driver kills, and the supervisor that restarts them.

A `Service` is one long-running `ledgerflow` process with its own log file. The
`Supervisor` plays the part of a restart policy (systemd, Kubernetes): a process that
exits is started again; one the driver killed stays down while the driver holds it.
Exits nobody asked for are recorded, with the end of the process's log, for the report.
Processes are stopped by their own pid, never by name.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import ROOT

RESTART_PAUSE_S = 0.5
"""How soon a process that exited by itself is started again."""
START_REFUSALS = (
    "opening the Kafka event log",
    "Unable to bootstrap from",
    "creating the view tables failed",
    "creating the webhook cursor tables failed",
    "cannot reach the S3 endpoint",
    "cannot reach Redis at",
)
"""A process that cannot reach the broker, the database, the artifact store or Redis (the
gateway's relay pings it) as it starts says so and exits non-zero; its restart policy
starts it again. That is a refusal to start, not a crash."""


@dataclass
class Exit:
    service: str
    at_s: float
    code: int
    tail: str

    @property
    def refused_to_start(self) -> bool:
        last = self.tail.rsplit("===== start", 1)[-1]
        errors = [line for line in last.splitlines() if line.startswith("Error: ")]
        return bool(errors) and any(r in errors[-1] for r in START_REFUSALS)

    def __str__(self) -> str:
        what = "refused to start" if self.refused_to_start else "exited"
        return f"{self.service} {what} with {self.code} at t={self.at_s:.1f}s:\n{self.tail}"


@dataclass
class Service:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    ready: Callable[[], bool] | None = None
    """Whether a started process is serving (polled by `wait_ready`)."""
    proc: subprocess.Popen[bytes] | None = None
    holds: int = 0
    """Faults keeping it down now; it is restarted once none is left."""
    starts: int = 0
    kills: int = 0
    killed_at: list[float] = field(default_factory=list)
    """Wall-clock times of the SIGKILLs (what a crashed process took with it is judged
    by them)."""

    def launch(self) -> None:
        with self.log.open("ab") as out:
            when = time.strftime("%H:%M:%S", time.localtime()) + f"{time.time() % 1:.2f}"[1:]
            out.write(f"\n===== start {self.starts + 1} of {self.name} at {when}\n".encode())
            out.flush()
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no goodbye, no cleanup."""
        if self.proc is not None and self.proc.poll() is None:
            self.killed_at.append(time.time())
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
            self.kills += 1

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while self.ready is not None and not self.ready():
            if not self.running():
                raise AssertionError(f"{self.name} exited while starting:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready in {timeout:g} s:\n{self.tail()}")
            time.sleep(0.1)

    def tail(self, chars: int = 3000) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-chars:]


@dataclass
class Supervisor:
    services: dict[str, Service]
    started: float = field(default_factory=time.monotonic)
    exits: list[Exit] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name="supervisor", daemon=True)
        self._thread.start()
        return self

    def hold(self, name: str) -> None:
        """Kill `name` and keep it down until `release`."""
        with self._lock:
            service = self.services[name]
            service.holds += 1
            service.kill()

    def release(self, name: str) -> None:
        with self._lock:
            self.services[name].holds -= 1

    def retire(self, name: str) -> None:
        """Stop `name` for good (SIGTERM: it finishes what it is doing)."""
        with self._lock:
            service = self.services[name]
            service.holds += 1
            service.stop()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        for service in self.services.values():
            service.stop()

    def dump_stacks(self) -> None:
        """Have every running service print all its threads' stacks to its log and end
        (SIGABRT with PYTHONFAULTHANDLER set): what a hung stack was doing, for the report."""
        with self._lock:
            self._stop.set()  # no restarts from here on
            for service in self.services.values():
                if service.running() and service.proc is not None:
                    service.proc.send_signal(signal.SIGABRT)
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        service.proc.wait(timeout=10)

    def all_up(self) -> bool:
        with self._lock:
            return all(s.running() for s in self.services.values() if not s.holds)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            with self._lock:
                for service in self.services.values():
                    if service.holds or service.proc is None:
                        continue
                    code = service.proc.poll()
                    if code is None:
                        continue
                    if code != -signal.SIGKILL:  # one the driver killed is no surprise
                        at = time.monotonic() - self.started
                        self.exits.append(Exit(service.name, at, code, service.tail(1500)))
                        time.sleep(RESTART_PAUSE_S)
                    service.launch()
