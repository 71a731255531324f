"""A seeded schedule of faults: what the driver does to the stack, and when.

The same seed gives the same schedule (times, actions, targets, how long each lasts), so
a failing run is replayed with `LEDGERFLOW_FAULT_SEED=<seed>`. Every target gets at least
one fault (in an order the seed shuffles); the rest of the run draws targets at random.
Faults may overlap, as real ones do.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

SEED_ENV = "LEDGERFLOW_FAULT_SEED"

KILL = "kill"
"""SIGKILL a process; it is restarted `hold_s` later (a crash, then its restart policy)."""
CUT = "cut"
"""Reset every connection to a service and refuse new ones for `hold_s` (a partition, or
the service restarting), through the TCP proxy the stack reaches it by."""
RESTART = "restart"
"""Kill a server that keeps nothing on disk (the stack's Redis) and start it again, empty,
on the same port `hold_s` later: a restart without persistence."""
FLUSH = "flush"
"""Delete every key of the stack's Redis (`FLUSHALL`) at once; `hold_s` means nothing."""


@dataclass(frozen=True, slots=True)
class Fault:
    at_s: float
    """Seconds after the load started."""
    action: str
    target: str
    hold_s: float
    """How long the target stays down."""

    def __str__(self) -> str:
        return f"t={self.at_s:6.2f}s {self.action:<7} {self.target:<14} for {self.hold_s:.2f}s"


@dataclass(frozen=True, slots=True)
class Schedule:
    seed: int
    duration_s: float
    faults: tuple[Fault, ...]

    def describe(self) -> str:
        lines = [f"fault schedule, seed {self.seed} (replay: {SEED_ENV}={self.seed}):"]
        return "\n".join([*lines, *(f"  {f}" for f in self.faults)])

    def targets(self) -> set[str]:
        return {f.target for f in self.faults}


def seed_from_env() -> int:
    """The seed the environment names, or a fresh random one (reported on failure)."""
    given = os.environ.get(SEED_ENV, "").strip()
    if given:
        try:
            return int(given)
        except ValueError:
            raise ValueError(f"{SEED_ENV}={given!r} must be a whole number") from None
    return random.SystemRandom().randrange(1, 2**31)


def make_schedule(
    seed: int,
    targets: dict[str, str],
    *,
    duration_s: float,
    start_s: float = 2.0,
    gap_s: tuple[float, float] = (2.0, 5.0),
    hold_s: tuple[float, float] = (0.5, 4.0),
) -> Schedule:
    """Faults from `start_s` until `duration_s` (each over by then), one every `gap_s`
    seconds (drawn uniformly); `targets` maps each target to its action (KILL or CUT)."""
    rng = random.Random(seed)
    names = sorted(targets)
    must = rng.sample(names, len(names))  # every target at least once, in a seeded order
    faults: list[Fault] = []
    at = start_s
    while True:
        hold = round(rng.uniform(*hold_s), 2)
        if at + hold > duration_s:
            break
        target = must.pop() if must else rng.choice(names)
        faults.append(Fault(round(at, 2), targets[target], target, hold))
        at += rng.uniform(*gap_s)
    if must:
        raise ValueError(
            f"a {duration_s:g} s schedule has no room for a fault on each of {names}; "
            "make it longer or the gaps shorter"
        )
    return Schedule(seed, duration_s, tuple(faults))
