"""Services that answer reads and refuse everything else, for as_of backends.

The reads are listed; anything not listed (every command, and any method added
later) is refused with the as_of read-only error before it touches anything. The
`LogPrefix` under an as_of backend refuses appends as well, so a write the list
missed still stores nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar, cast

from ledgerflow.events.as_of import read_only

T = TypeVar("T")


class _ReadOnly:
    def __init__(self, target: object, reads: frozenset[str], today: Mapping[str, Any]) -> None:
        self._target = target
        self._reads = reads
        self._today = today

    def __getattr__(self, name: str) -> Any:
        if name in self._reads:
            return getattr(self._target, name)
        if name in self._today:
            return self._today[name]
        if name.startswith("__"):
            raise AttributeError(name)

        def refuse(*args: Any, **_: Any) -> NoReturn:
            command = args[0] if name == "execute" and args else None
            raise read_only(f"run {type(command).__name__}" if command else name)

        return refuse

    def __repr__(self) -> str:
        return f"ReadOnly({self._target!r})"


def reads_only(service: T, reads: Iterable[str], *, today: Mapping[str, Any] | None = None) -> T:
    """`service` answering only `reads` (attribute names); a stand-in of its type. `today`
    answers what is not history (e.g. a webhook's delivery attempts) from the present."""
    return cast(T, _ReadOnly(service, frozenset(reads), today or {}))
