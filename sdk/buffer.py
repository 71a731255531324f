"""Metric points buffered in memory and written in batches by a background flusher.

`log_metric` only appends a tuple under a lock; a daemon thread hands the
points to the backend every `interval` seconds or as soon as `max_points` are
waiting. `flush()` writes everything now and returns once it is durable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from ledgerflow.events.errors import (
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    Timeout,
)

log = logging.getLogger("ledgerflow")

Point = tuple[str, float, int, int]  # key, value, timestamp, step
Sink = Callable[[str, Sequence[Point]], None]


class MetricBuffer:
    def __init__(self, sink: Sink, *, interval: float = 1.0, max_points: int = 20_000) -> None:
        self._sink = sink
        self._interval = interval
        self._max = max_points
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._pending: dict[str, list[Point]] = {}  # run id -> points in logging order
        self._count = 0
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        with self._lock:
            points = self._pending.get(run_id)
            if points is None:
                points = self._pending[run_id] = []
            points.append((key, value, timestamp, step))
            self._count += 1
            n = self._count
        if self._thread is None:
            self._start()
        if n >= self._max:
            self._wake.set()

    def pending(self) -> int:
        return self._count

    def _start(self) -> None:
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._run, name="ledgerflow-flusher", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._interval)
            self._wake.clear()
            try:
                self.flush()
            except Timeout as e:
                log.warning("ledgerflow: metric points are stored but not yet projected: %s", e)
            except (NotFound, Conflict, InvalidInput) as e:
                log.warning("ledgerflow: dropped metric points the backend refused: %s", e)
            except LedgerflowError as e:
                log.warning("ledgerflow: background metric flush failed, will retry: %s", e)
            except Exception:
                log.exception("ledgerflow: background metric flush failed, will retry")

    def flush(self, run_id: str | None = None) -> None:
        """Write buffered points (all, or one run's) and return once they are durable.

        Points the backend refuses for good (run deleted, unknown) are dropped and the
        error raised; points that failed for a passing reason go back in the buffer.
        """
        with self._flush_lock:
            with self._lock:
                if run_id is None:
                    taken, self._pending = self._pending, {}
                else:
                    mine = self._pending.pop(run_id, None)
                    taken = {run_id: mine} if mine else {}
                self._count -= sum(len(pts) for pts in taken.values())
            first_error: LedgerflowError | None = None
            for rid, pts in taken.items():
                try:
                    self._sink(rid, pts)
                except (NotFound, Conflict, InvalidInput, Timeout) as e:
                    # Refused for good, or appended (durable) but slow to project: either
                    # way sending them again would not help, and could duplicate them.
                    first_error = first_error or e
                except BaseException:
                    with self._lock:  # keep them for the next attempt, ahead of newer ones
                        self._pending[rid] = pts + self._pending.get(rid, [])
                        self._count += len(pts)
                    raise
            if first_error is not None:
                raise first_error

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
