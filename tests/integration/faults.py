"""Faults injected into real components, for the tests that prove what a failure does."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from ledgerflow.events.sqlite_log import SQLiteEventLog


class BreakingLog:
    """A real SQLite log whose subscriptions fail, with an error no retry covers (a bug,
    not an outage), once `broken` is set: what kills a thread that follows the log."""

    def __init__(self, inner: SQLiteEventLog) -> None:
        self._inner = inner
        self.broken = threading.Event()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def subscribe(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for item in self._inner.subscribe(*args, **kwargs):
            if self.broken.is_set():
                raise RuntimeError("the disk is on fire")
            yield item
