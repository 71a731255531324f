"""The fault schedule alone: pure, so a seed always means the same faults."""

from __future__ import annotations

import pytest

from tests.faults.schedule import CUT, KILL, SEED_ENV, make_schedule, seed_from_env

TARGETS = {"gateway": KILL, "projector-0": KILL, "projector-1": KILL, "broker": CUT}


def test_a_seed_gives_the_same_schedule_and_another_seed_another() -> None:
    one = make_schedule(7, TARGETS, duration_s=40)
    assert one == make_schedule(7, TARGETS, duration_s=40)
    assert one.faults != make_schedule(8, TARGETS, duration_s=40).faults
    assert f"{SEED_ENV}=7" in one.describe()


@pytest.mark.parametrize("seed", range(20))
def test_every_target_gets_a_fault_and_every_fault_is_over_by_the_end(seed: int) -> None:
    schedule = make_schedule(seed, TARGETS, duration_s=30, gap_s=(2, 4), hold_s=(0.5, 3))
    assert schedule.targets() == set(TARGETS)
    assert all(f.action == TARGETS[f.target] for f in schedule.faults)
    assert all(f.at_s >= 2 and f.at_s + f.hold_s <= 30 for f in schedule.faults)
    times = [f.at_s for f in schedule.faults]
    assert times == sorted(times)


def test_a_schedule_too_short_for_every_target_says_so() -> None:
    with pytest.raises(ValueError, match="no room for a fault on each"):
        make_schedule(1, TARGETS, duration_s=6)


def test_the_seed_comes_from_the_environment_when_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SEED_ENV, "1234")
    assert seed_from_env() == 1234
    monkeypatch.setenv(SEED_ENV, "soon")
    with pytest.raises(ValueError, match="must be a whole number"):
        seed_from_env()
    monkeypatch.delenv(SEED_ENV)
    assert 1 <= seed_from_env() < 2**31  # drawn at random
