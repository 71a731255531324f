"""Where a hub's live items come from (a `Source`): without Redis, a `LogFollower`, one
thread of this process following the log from its head; with Redis, the cluster's relay
(`ledgerflow.services.gateway.relay.RedisRelay`)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.log import Checkpoint, EventLog, Item
from ledgerflow.services.watchdog import running

logger = logging.getLogger("ledgerflow.services.gateway.hub")  # the name operators filter on


class Source(Protocol):
    """Where a hub's live items come from: the log itself, or a Redis relay."""

    def start(self) -> None: ...

    def close(self) -> None: ...

    def alive(self) -> bool:
        """False once a thread of it died without being asked to stop."""
        ...


class LogFollower:
    """The hub's source without Redis: one thread following the log from its head."""

    def __init__(self, log: EventLog, dispatch: Callable[[Item], None]) -> None:
        self._log = log
        self._dispatch = dispatch
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="event-hub-follower", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def alive(self) -> bool:
        return running(self._thread, self._stop)

    def _run(self) -> None:
        after: Checkpoint | None = None
        while not self._stop.is_set():
            try:
                if after is None:
                    after = self._log.head()
                for item in self._log.subscribe(after=after, stop=self._stop):
                    after = after.advance(item)
                    self._dispatch(item)
            except LedgerflowError as e:
                # Subscribers keep their place; they get what follows once the log answers.
                logger.warning("event hub: following the log failed (%s); retrying", e)
                self._stop.wait(1.0)
