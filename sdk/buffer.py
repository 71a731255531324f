"""Metric points buffered in memory and written in batches by a background flusher.

`log_metric` only appends a tuple under a lock; a daemon thread hands the
points to the backend every `interval` seconds or as soon as `max_points` are
waiting. `flush()` writes everything now and returns once it is durable.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence

from ledgerflow.events.errors import Conflict, InvalidInput, LedgerflowError, NotFound

log = logging.getLogger("ledgerflow")

Point = tuple[str, str, float, int, int]  # run_id, key, value, timestamp, step
Sink = Callable[[str, Sequence[tuple[str, float, int, int]]], None]


class MetricBuffer:
    def __init__(self, sink: Sink, *, interval: float = 1.0, max_points: int = 20_000) -> None:
        self._sink = sink
        self._interval = interval
        self._max = max_points
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._points: list[Point] = []
        self._wake = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def add(self, run_id: str, key: str, value: float, timestamp: int, step: int) -> None:
        with self._lock:
            self._points.append((run_id, key, value, timestamp, step))
            n = len(self._points)
        if self._thread is None:
            self._start()
        if n >= self._max:
            self._wake.set()

    def pending(self) -> int:
        return len(self._points)

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
                    taken, self._points = self._points, []
                else:
                    taken = [pt for pt in self._points if pt[0] == run_id]
                    self._points = [pt for pt in self._points if pt[0] != run_id]
            if not taken:
                return
            by_run: dict[str, list[tuple[str, float, int, int]]] = defaultdict(list)
            for rid, key, value, ts, step in taken:
                by_run[rid].append((key, value, ts, step))
            first_error: LedgerflowError | None = None
            for rid, pts in by_run.items():
                try:
                    self._sink(rid, pts)
                except (NotFound, Conflict, InvalidInput) as e:
                    first_error = first_error or e
                except BaseException:
                    with self._lock:  # keep them for the next attempt, in order
                        self._points[:0] = [(rid, *pt) for pt in pts]
                    raise
            if first_error is not None:
                raise first_error

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        t = self._thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=5)
