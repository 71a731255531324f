"""TF Serving's version labels are registry aliases, as the registry has them now.

`Aliases` holds every registered model's aliases, folded from the log's alias events
(`model.alias_set`, `model.alias_deleted`, and the version and model deletions and renames
that take aliases with them) and followed in a thread, so an alias moved or deleted after
a model was loaded moves or drops its label within a moment, with no registry round trip
per request: a label is a dictionary lookup. A model server follows the log of the backend
it loads from (`ledgerflow serve`'s, a replica's, `ledgerflow server`'s own).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Generator, Iterator, Mapping, Sequence
from contextlib import closing
from typing import Protocol

from ledgerflow.events import model_payloads as m
from ledgerflow.events.envelope import Recorded
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.log import After, Checkpoint, Item
from ledgerflow.services.watchdog import running

logger = logging.getLogger("ledgerflow.serving")

TYPES = [
    m.ModelAliasSet.TYPE,
    m.ModelAliasDeleted.TYPE,
    m.ModelVersionDeleted.TYPE,
    m.RegisteredModelRenamed.TYPE,
    m.RegisteredModelDeleted.TYPE,
]
"""The events that change a model's aliases."""


class Feed(Protocol):
    """Where the events come from: an `EventLog`, or a client backend's log (a gateway's
    event stream)."""

    def subscribe(
        self,
        after: After = None,
        types: Sequence[str] | None = None,
        *,
        stop: threading.Event | None = None,
        follow: bool = True,
        idle_wait: float = 1.0,
    ) -> Iterator[Item]: ...


def changes(
    aliases: Mapping[str, Mapping[str, int]], payload: object
) -> dict[str, dict[str, int] | None]:
    """The models whose aliases `payload` changes, each with its aliases after it (None: the
    model is gone); the projector's registry handlers make the same moves."""
    if isinstance(payload, m.ModelAliasSet):
        return {payload.name: {**aliases.get(payload.name, {}), payload.alias: payload.version}}
    if isinstance(payload, m.ModelAliasDeleted):
        current = aliases.get(payload.name, {})
        return {payload.name: {a: v for a, v in current.items() if a != payload.alias}}
    if isinstance(payload, m.ModelVersionDeleted):
        current = aliases.get(payload.name, {})
        return {payload.name: {a: v for a, v in current.items() if v != payload.version}}
    if isinstance(payload, m.RegisteredModelRenamed):
        return {payload.name: None, payload.new_name: dict(aliases.get(payload.name, {}))}
    if isinstance(payload, m.RegisteredModelDeleted):
        return {payload.name: None}
    return {}


class Aliases:
    """Every registered model's aliases as the log has them now. `start()` folds the log up
    to its head (blocking), then follows it in a thread until `stop()`."""

    def __init__(self, log: Feed | None = None) -> None:
        """Without a `log`, the aliases are only those `apply` is given."""
        self.log = log
        self._models: dict[str, dict[str, int]] = {}
        self._checkpoint = Checkpoint()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def of(self, model: str) -> Mapping[str, int]:
        """`model`'s aliases and the version each points at (never mutated: replaced)."""
        return self._models.get(model, {})

    def apply(self, payload: object) -> None:
        for name, now in changes(self._models, payload).items():
            if now:
                self._models[name] = now
            else:
                self._models.pop(name, None)

    def start(self) -> Aliases:
        self._fold(follow=False)
        self._thread = threading.Thread(target=self._run, name="alias-follower", daemon=True)
        self._thread.start()
        return self

    def alive(self) -> bool:
        """False once the following thread died (labels would stop following aliases)."""
        return running(self._thread, self._stop)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._fold(follow=True)
            except LedgerflowError as e:
                logger.warning("alias follower: %s; retrying", e)
                self._stop.wait(1.0)

    def _fold(self, *, follow: bool) -> None:
        if self.log is None:
            return
        items = self.log.subscribe(self._checkpoint or None, TYPES, stop=self._stop, follow=follow)
        with closing(_generator(items)) as stream:
            for item in stream:
                self._checkpoint = self._checkpoint.advance(item)
                if isinstance(item, Recorded):
                    self.apply(item.event.data)


def _generator(items: Iterator[Item]) -> Generator[Item, None, None]:
    yield from items
