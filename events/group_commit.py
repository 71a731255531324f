"""Group commit: the threads of one process that append at the same time share one write.

An append is a durable write (an fsync on SQLite, a produce request acknowledged by the
brokers on Kafka) whose cost hardly depends on how many events it carries. While one
thread writes, the others queue their events; when it is done, the first of them writes
everything that queued in one call, and each caller gets back the positions of its own
events. A lone caller writes at once, as before: it waits for nobody.

Callers keep their own outcome: if a shared write fails, each caller's events are written
again on their own, so one caller's bad events (or an error only they meet) fail that
caller alone, and the others' appends go through. An error of the log itself (`shared`:
unreachable, locked past its wait) is every caller's at once, without writing again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

E = TypeVar("E")
R = TypeVar("R")


class _Slot(Generic[E, R]):
    __slots__ = ("error", "events", "result")

    def __init__(self, events: Sequence[E]) -> None:
        self.events = events
        self.result: list[R] | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[E, R]):
    """`write(events)` appends a flat list and answers one result per event, in order."""

    def __init__(
        self,
        write: Callable[[Sequence[E]], list[R]],
        shared: tuple[type[Exception], ...] = (),
    ) -> None:
        self._write = write
        self._shared = shared
        self._cond = threading.Condition()
        self._queue: list[_Slot[E, R]] = []
        self._writing = False
        self.writes = 0
        """Writes made (one per group): with `appends`, how much grouping happens."""
        self.appends = 0

    def append(self, events: Sequence[E]) -> list[R]:
        slot: _Slot[E, R] = _Slot(events)
        with self._cond:
            self._queue.append(slot)
            self.appends += 1
            while self._writing and slot.result is None and slot.error is None:
                self._cond.wait()
            if slot.result is None and slot.error is None:  # nobody took it: write the queue
                group, self._queue = self._queue, []
                self._writing = True
                self.writes += 1
        if slot.result is None and slot.error is None:
            try:
                self._write_group(group)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()
        if slot.error is not None:
            raise slot.error
        assert slot.result is not None
        return slot.result

    def _write_group(self, group: list[_Slot[E, R]]) -> None:
        try:
            if len(group) == 1:
                self._write_alone(group[0])
                return
            try:
                results = self._write([e for slot in group for e in slot.events])
            except self._shared as e:  # the log's trouble, not a caller's: everyone's
                for slot in group:
                    slot.error = e
                return
            except Exception:
                for slot in group:  # each caller's events on their own: its own outcome
                    self._write_alone(slot)
                return
            start = 0
            for slot in group:
                slot.result = results[start : start + len(slot.events)]
                start += len(slot.events)
        finally:  # interrupted (KeyboardInterrupt in the writing thread): nobody waits forever
            for slot in group:
                if slot.result is None and slot.error is None:
                    slot.error = RuntimeError("the shared append was interrupted")

    def _write_alone(self, slot: _Slot[E, R]) -> None:
        try:
            slot.result = self._write(slot.events)
        except Exception as e:
            slot.error = e
