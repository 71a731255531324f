"""Failed sign-ins throttled per user name and per address, with a clock the test turns."""

from __future__ import annotations

import pytest

from ledgerflow.events.errors import RateLimited
from ledgerflow.services.auth.throttle import LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_user_name_that_failed_its_allowance_waits_until_a_token_refills():
    clock = Clock()
    throttle = LoginThrottle(per_user=3, per_client=0, clock=clock)
    for _ in range(3):
        throttle.check("alice", "10.0.0.1")
        throttle.failed("alice", "10.0.0.1")
    with pytest.raises(RateLimited, match="too many failed sign-ins for user name 'alice'") as e:
        throttle.check("alice", "10.0.0.2")  # from anywhere
    assert e.value.retry_after_s == pytest.approx(20.0)  # 3 a minute: one every 20 s
    throttle.check("bob", "10.0.0.1")  # others are not affected
    clock.now += 20
    throttle.check("alice", "10.0.0.1")


def test_an_address_that_failed_its_allowance_is_refused_whatever_name_it_tries():
    clock = Clock()
    throttle = LoginThrottle(per_user=0, per_client=2, clock=clock)
    for name in ("a", "b"):
        throttle.failed(name, "10.0.0.9")
    with pytest.raises(RateLimited, match="address 10.0.0.9"):
        throttle.check("c", "10.0.0.9")
    with pytest.raises(RateLimited, match="address 10.0.0.9"):
        throttle.check(None, "10.0.0.9")  # a token from there too
    throttle.check("c", "10.0.0.10")


def test_zero_turns_the_throttle_off():
    throttle = LoginThrottle(per_user=0, per_client=0)
    for _ in range(1000):
        throttle.failed("alice", "10.0.0.1")
    throttle.check("alice", "10.0.0.1")
