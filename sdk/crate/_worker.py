"""The long-lived `Rscript` process behind a loaded R model.

One worker per loaded model, started at the first predict: `Rscript --vanilla worker.R
<crate.bin> [package ...]` loads the function once, then answers one JSON line on its
stdout for each JSON line on its stdin (`ledgerflow.crate._codec`). A lock makes it safe
to share between threads; a worker that died (killed, crashed) is started again at the
next call; one that does not answer within the timeout is killed. What R prints on stderr
(the model's output, warnings) is logged. The process stops when the model is garbage
collected or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import selectors
import shutil
import subprocess
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from ledgerflow.events.errors import LedgerflowError, Unavailable

log = logging.getLogger("ledgerflow.crate")

WORKER_SCRIPT = Path(__file__).with_name("worker.R")
INSTALL_HINT = (
    "install R and jsonlite: as root, 'apt-get install -y --no-install-recommends "
    "r-base-core r-cran-jsonlite' (Debian/Ubuntu); elsewhere R from r-project.org and "
    "install.packages('jsonlite')"
)
START_TIMEOUT_S = 60.0


def find_rscript() -> str:
    """The `Rscript` on PATH, or Unavailable saying what to install."""
    found = shutil.which("Rscript")
    if found is None:
        raise Unavailable(f"an R model needs Rscript, which is not on PATH: {INSTALL_HINT}")
    return found


class RWorker:
    """The R process of one model: `call(line)` sends a request line, answers the reply line."""

    def __init__(
        self, model_file: Path, packages: Sequence[str] = (), timeout_s: float = 600.0
    ) -> None:
        self.model_file = model_file
        self.packages = list(packages)
        self.timeout_s = timeout_s
        self.r_version: str | None = None
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._stderr: deque[str] = deque(maxlen=30)
        self._finalizer: weakref.finalize[Any, RWorker] | None = None

    @property
    def pid(self) -> int | None:
        """The running R process's id (None before the first call)."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def call(self, line: str) -> str:
        with self._lock:
            if self._proc is None or self._proc.poll() is not None:
                self._start()
            proc = self._proc
            assert proc is not None and proc.stdin is not None  # set by _start
            try:
                proc.stdin.write(line.encode() + b"\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                pass  # the reply read below reports the dead worker with its stderr
            return self._read_line(time.monotonic() + self.timeout_s, "answering")

    def close(self) -> None:
        """Stop the R process (it exits when its stdin closes)."""
        with self._lock:
            if self._finalizer is not None:
                self._finalizer()
            self._proc = None

    def _start(self) -> None:
        rscript = find_rscript()
        self._buffer = b""
        self._stderr.clear()
        args = [rscript, "--vanilla", str(WORKER_SCRIPT), str(self.model_file), *self.packages]
        proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._proc = proc
        if self._finalizer is not None:
            self._finalizer.detach()
        self._finalizer = weakref.finalize(self, _stop, proc)
        threading.Thread(
            target=_drain, args=(proc.stderr, self._stderr), name="ledgerflow-r-stderr",
            daemon=True,
        ).start()  # fmt: skip
        line = self._read_line(time.monotonic() + START_TIMEOUT_S, "starting")
        try:
            hello = json.loads(line)
        except ValueError:
            hello = {"error": f"it said {line[:200]!r} instead of JSON"}
        if not hello.get("ready"):
            _stop(proc)
            raise LedgerflowError(
                f"the R worker could not load {self.model_file}: {hello.get('error')}"
            )
        self.r_version = hello.get("r_version")
        log.info("started R %s worker %s for %s", self.r_version, proc.pid, self.model_file)

    def _read_line(self, deadline: float, doing: str) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    _stop(proc, grace_s=0)
                    raise Unavailable(
                        f"the R worker for {self.model_file} was not done {doing} after "
                        f"{self.timeout_s if doing == 'answering' else START_TIMEOUT_S:g} s; "
                        "it was stopped and starts again at the next call"
                    )
                if not sel.select(left):
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    code = proc.wait(5)
                    time.sleep(0.05)  # let the stderr reader take R's last words
                    said = "\n".join(self._stderr) or "(nothing on stderr)"
                    raise Unavailable(
                        f"the R worker for {self.model_file} exited with {code} while {doing}; "
                        f"it starts again at the next call. R said:\n{said}"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


def _drain(stream: IO[bytes] | None, tail: deque[str]) -> None:
    if stream is None:
        return
    for raw in iter(stream.readline, b""):
        text = raw.decode(errors="replace").rstrip()
        tail.append(text)
        log.info("R: %s", text)


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 2.0) -> None:
    """Close the worker's stdin (it exits on EOF), then kill it if it lingers `grace_s`."""
    if proc.poll() is None:
        try:
            if proc.stdin is not None:
                proc.stdin.close()
            if grace_s <= 0:
                raise subprocess.TimeoutExpired(proc.args, grace_s)
            proc.wait(grace_s)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(5)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
