"""Waiting in tests for something another thread or process does."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.05


def wait_until(
    condition: Callable[[], object],
    timeout: float = 60.0,
    what: str | Callable[[], str] = "the condition",
) -> None:
    """Poll `condition` until it is true, or fail after `timeout` seconds naming `what`; a
    callable `what` is called then, to show the state at that moment (a log, a count)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:g} s waiting for {said}")
        time.sleep(POLL_S)
