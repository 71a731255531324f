"""Simulated users for the demo's A/B test: who asks, for which image, and who converts.

Pure and seeded, so a run repeats exactly and the test can check it without a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

USERS = 400
SEED = 7
CONVERSION_IF_RIGHT, CONVERSION_IF_WRONG = 0.30, 0.05


@dataclass(frozen=True)
class SimulatedRequest:
    user: str
    """The sticky routing key, `user-N`."""
    image: int
    """Index of the test image the user sends."""
    draw: float
    """Uniform in [0, 1): the user converts when it falls below the conversion probability."""


class Simulator:
    """Simulated users and outcomes, from a seeded generator so a run repeats exactly.

    Each request is a random user's (`user-0` ... `user-{users-1}`, the sticky key) and a
    random test image; the user converts with `if_right` probability when the served
    model read the digit right, else `if_wrong`. So the more accurate model converts
    more, by (if_right - if_wrong) times the accuracy gap: a real effect, of a size the
    test has to find."""

    def __init__(
        self,
        labels: Any,
        *,
        users: int = USERS,
        seed: int = SEED,
        if_right: float = CONVERSION_IF_RIGHT,
        if_wrong: float = CONVERSION_IF_WRONG,
    ) -> None:
        import numpy as np

        self.labels = np.asarray(labels)
        self.users = users
        self.if_right = if_right
        self.if_wrong = if_wrong
        self.rng = np.random.default_rng(seed)

    def requests(self, n: int) -> list[SimulatedRequest]:
        """`n` requests, each with the draw that decides its outcome (drawn here, so the
        outcomes do not depend on the order in which concurrent answers arrive)."""
        users = self.rng.integers(0, self.users, size=n)
        images = self.rng.integers(0, len(self.labels), size=n)
        draws = self.rng.random(size=n)
        return [
            SimulatedRequest(f"user-{u}", int(i), float(x))
            for u, i, x in zip(users, images, draws, strict=True)
        ]

    def converted(self, request: SimulatedRequest, predicted: int) -> bool:
        right = predicted == int(self.labels[request.image])
        return request.draw < (self.if_right if right else self.if_wrong)
