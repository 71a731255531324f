"""Dynamic batching: concurrent requests to one model are concatenated along axis 0,
predicted once, and the predictions split back so each request gets its own rows.

A batch closes when it holds `max_batch_size` rows or `max_wait_ms` passed since its first
request; while a batch is predicted the next one fills, so under load batches grow by
themselves. Requests that cannot be joined (different columns, dtypes or trailing shapes, or
with params) are predicted on their own. When a batched predict fails, the requests are
predicted one by one, so an error is answered to the request that caused it and to no other.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ledgerflow.services.serving.scoring import ModelRequest, count_rows

PredictFn = Callable[[Any, dict[str, Any] | None], Any]


class Unsplittable(Exception):
    """Predictions that do not have one row per input row."""


def concatenate(parts: Sequence[Any]) -> Any | None:
    """The inputs joined along axis 0, or None when they cannot be joined exactly."""
    first = parts[0]
    if isinstance(first, np.ndarray):
        if first.ndim == 0 or not all(
            isinstance(p, np.ndarray)
            and p.dtype == first.dtype
            and p.shape[1:] == first.shape[1:]
            and p.ndim == first.ndim
            for p in parts
        ):
            return None
        return np.concatenate(parts, axis=0)
    if isinstance(first, dict):
        keys = list(first)
        if not all(isinstance(p, dict) and list(p) == keys for p in parts):
            return None
        columns = {k: concatenate([p[k] for p in parts]) for k in keys}
        return None if any(v is None for v in columns.values()) else columns
    if type(first).__name__ == "DataFrame":
        import pandas as pd

        if not all(
            type(p).__name__ == "DataFrame"
            and list(p.columns) == list(first.columns)
            and list(p.dtypes) == list(first.dtypes)
            for p in parts
        ):
            return None
        return pd.concat(parts, ignore_index=True)
    return None


def join_key(data: Any) -> Any:
    """What inputs must share to be concatenated (None: this one joins nothing)."""
    if isinstance(data, np.ndarray):
        return ("array", data.dtype.str, data.shape[1:]) if data.ndim else None
    if isinstance(data, dict):
        keys = tuple((k, join_key(v)) for k, v in data.items())
        return ("dict", keys) if all(k[1] is not None for k in keys) else None
    if type(data).__name__ == "DataFrame":
        return ("frame", tuple(map(str, data.columns)), tuple(map(str, data.dtypes)))
    return None


def split(predictions: Any, rows: Sequence[int]) -> list[Any]:
    """Predictions cut back into one piece per request, by the requests' row counts."""
    total = sum(rows)
    bounds = np.cumsum([0, *rows]).tolist()
    pieces = list(itertools.pairwise(bounds))
    if isinstance(predictions, np.ndarray):
        if predictions.ndim == 0 or predictions.shape[0] != total:
            raise Unsplittable
        return [predictions[a:b] for a, b in pieces]
    if isinstance(predictions, list | tuple):
        if len(predictions) != total:
            raise Unsplittable
        return [predictions[a:b] for a, b in pieces]
    if isinstance(predictions, dict):
        columns = {k: split(v, rows) for k, v in predictions.items()}
        return [{k: columns[k][i] for k in columns} for i in range(len(rows))]
    if type(predictions).__name__ in ("DataFrame", "Series"):
        if len(predictions) != total:
            raise Unsplittable
        return [predictions.iloc[a:b].reset_index(drop=True) for a, b in pieces]
    raise Unsplittable


@dataclass
class _Pending:
    request: ModelRequest
    rows: int
    future: asyncio.Future[Any]
    since: float = field(default_factory=time.perf_counter)


def _one_by_one(predict: PredictFn, requests: list[ModelRequest]) -> list[tuple[bool, Any]]:
    results: list[tuple[bool, Any]] = []
    for r in requests:
        try:
            results.append((True, predict(r.data, r.params)))
        except Exception as e:  # each request gets its own error back
            results.append((False, e))
    return results


INLINE_MAX_ROWS = 8


@dataclass
class Batcher:
    """Runs a model's predictions on `executor`, batching when `max_batch_size` > 1.

    A small request (up to INLINE_MAX_ROWS rows) predicted on its own (batching off, or
    nothing queued to join it) runs on the event loop itself when the model's recent small
    predicts took under `inline_below_ms`: for such models the hop to a worker thread and
    back costs more than the predict, and blocking the loop that briefly delays no one. Every
    predict is timed, so a model that gets slower goes back to the thread pool.
    `inline_below_ms=0` turns this off.

    `on_batch(requests, rows)` is told the size of every predict call, and `on_queued(s)`
    how long each batched request waited for its predict to start (for metrics).
    """

    predict: PredictFn
    executor: Executor
    max_batch_size: int = 1
    max_wait_ms: float = 0.0
    on_batch: Callable[[int, int], None] = lambda requests, rows: None
    on_queued: Callable[[float], None] = lambda seconds: None
    inline_below_ms: float = 0.5
    _cost_ms: float | None = field(default=None, init=False)
    _queue: asyncio.Queue[_Pending] | None = field(default=None, init=False)
    _task: asyncio.Task[None] | None = field(default=None, init=False)
    _carry: _Pending | None = field(default=None, init=False)

    @property
    def enabled(self) -> bool:
        return self.max_batch_size > 1

    async def submit(self, request: ModelRequest) -> Any:
        """The predictions for one request (raises what its predict raised)."""
        loop = asyncio.get_running_loop()
        rows = count_rows(request.data)
        if not self.enabled or request.params:
            self.on_batch(1, rows)
            if rows > INLINE_MAX_ROWS:
                return await loop.run_in_executor(
                    self.executor, self.predict, request.data, request.params
                )
            cost = self._cost_ms
            if cost is not None and cost < self.inline_below_ms:
                return self._timed(request.data, request.params)
            return await loop.run_in_executor(
                self.executor, self._timed, request.data, request.params
            )
        if self._task is None:
            self._queue = asyncio.Queue()
            self._task = loop.create_task(self._loop(), name="ledgerflow-batcher")
        assert self._queue is not None
        pending = _Pending(request, rows, loop.create_future())
        self._queue.put_nowait(pending)
        return await pending.future

    async def measure(self, data: Any) -> None:
        """Time one predict of `data` on the thread pool (after the warm-up, so it is not the
        first call), seeding the estimate that decides on predicting inline."""
        if count_rows(data) <= INLINE_MAX_ROWS:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self.executor, self._timed, data, None)

    def _timed(self, data: Any, params: dict[str, Any] | None) -> Any:
        """`predict`, folding its wall time into the running estimate of a small predict."""
        start = time.perf_counter()
        try:
            return self.predict(data, params)
        finally:
            ms = (time.perf_counter() - start) * 1000.0
            cost = self._cost_ms
            self._cost_ms = ms if cost is None else 0.8 * cost + 0.2 * ms

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _next(self, timeout: float | None) -> _Pending | None:
        assert self._queue is not None
        if self._carry is not None:
            item, self._carry = self._carry, None
            return item
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout is not None and timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        wait_s = max(self.max_wait_ms, 0.0) / 1000.0
        while True:
            first = await self._next(None)
            assert first is not None
            batch, rows = [first], first.rows
            deadline = loop.time() + wait_s
            while rows < self.max_batch_size:
                item = await self._next(deadline - loop.time())
                if item is None:
                    break
                if rows + item.rows > self.max_batch_size:
                    self._carry = item
                    break
                batch.append(item)
                rows += item.rows
            try:
                await self._run(batch)
            except Exception as e:  # never leave a caller waiting
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(e)

    async def _run(self, batch: list[_Pending]) -> None:
        live = [p for p in batch if not p.future.done()]  # cancelled by a gone client
        now = time.perf_counter()
        for p in live:
            self.on_queued(now - p.since)
        groups: dict[Any, list[_Pending]] = {}
        for p in live:
            groups.setdefault(join_key(p.request.data) or id(p), []).append(p)
        alone: list[_Pending] = []
        for group in groups.values():
            if len(group) == 1 or not await self._run_joined(group):
                alone += group
        if alone:
            await self._run_alone(alone)

    async def _run_joined(self, group: list[_Pending]) -> bool:
        """Predict `group` as one batch; False when it has to be predicted one by one."""
        joined = concatenate([p.request.data for p in group])
        if joined is None:
            return False
        self.on_batch(len(group), sum(p.rows for p in group))
        loop = asyncio.get_running_loop()
        try:
            out = await loop.run_in_executor(self.executor, self.predict, joined, None)
            parts = split(out, [p.rows for p in group])
        except Exception:  # retried one by one, so errors stay with their request
            return False
        for p, part in zip(group, parts, strict=True):
            if not p.future.done():
                p.future.set_result(part)
        return True

    async def _run_alone(self, pending: list[_Pending]) -> None:
        for p in pending:
            self.on_batch(1, p.rows)
        loop = asyncio.get_running_loop()
        if len(pending) == 1 and pending[0].rows <= INLINE_MAX_ROWS:
            await self._run_one(pending[0])
            return
        results = await loop.run_in_executor(
            self.executor, _one_by_one, self.predict, [p.request for p in pending]
        )
        for p, (ok, value) in zip(pending, results, strict=True):
            if p.future.done():
                continue
            if ok:
                p.future.set_result(value)
            else:
                p.future.set_exception(value)

    async def _run_one(self, p: _Pending) -> None:
        """A lone small request: inline when the model is fast (as without batching)."""
        cost = self._cost_ms
        try:
            if cost is not None and cost < self.inline_below_ms:
                value = self._timed(p.request.data, p.request.params)
            else:
                loop = asyncio.get_running_loop()
                value = await loop.run_in_executor(
                    self.executor, self._timed, p.request.data, p.request.params
                )
        except Exception as e:  # the request's own error
            if not p.future.done():
                p.future.set_exception(e)
            return
        if not p.future.done():
            p.future.set_result(value)
