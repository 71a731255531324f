"""Small helpers shared by the hub tests."""

from __future__ import annotations

import time

from ledgerflow.events.envelope import Event
from ledgerflow.services.gateway.hub import Delivery, Subscription
from tests.integration.eventlog_contract import tag_event


def tags(run: str, start: int, n: int) -> list[Event]:
    return [tag_event(run, i) for i in range(start, start + n)]


def take(sub: Subscription, n: int, timeout: float = 15.0) -> list[Delivery]:
    """The next `n` deliveries, failing if they do not come within `timeout`."""
    out: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"got {len(out)} of {n} events within {timeout}s")
        got = sub.next(0.2)
        if got is not None:
            out.append(got)
    return out


def positions(got: list[Delivery]) -> list[int]:
    return [d.item.position for d in got]
