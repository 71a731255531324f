"""How long a webhook waits before retrying a failed delivery.

Exponential with a cap, and jittered so that many webhooks failing at once (a
receiver restart) do not retry in lockstep. Retries never stop: the next event
waits behind the failing one, so giving up would mean losing it.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from ledgerflow.events.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Backoff:
    base_s: float = 1.0
    """The ceiling of the first wait; it doubles after each further failure."""
    cap_s: float = 300.0
    """No wait is longer than this, however many attempts failed."""

    def __post_init__(self) -> None:
        if not self.base_s > 0:
            raise InvalidInput(f"backoff base must be positive, got {self.base_s}", field="base")
        if not self.cap_s >= self.base_s:
            raise InvalidInput(
                f"backoff cap ({self.cap_s}s) must be at least the base ({self.base_s}s)",
                field="cap",
            )

    def ceiling(self, failures: int) -> float:
        """The longest wait after `failures` failed attempts in a row (1 or more)."""
        return min(self.cap_s, self.base_s * 2.0 ** min(max(failures, 1) - 1, 64))

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float:
        """A wait between half the ceiling and the ceiling ("equal jitter")."""
        ceiling = self.ceiling(failures)
        return ceiling / 2 + ceiling / 2 * rng()
