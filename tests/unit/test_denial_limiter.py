"""The rate limit on recording refused requests: one per key per interval, the rest counted
and carried by the next one recorded, in bounded memory; and a record that cannot be made
never changes the answer."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from ledgerflow.events.auth_payloads import AuthDenied
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import Unavailable
from ledgerflow.events.log import EventLog
from ledgerflow.services.auth.denials import DenialLimiter, DenialRecorder


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_one_refusal_per_key_per_interval_is_recorded_and_the_next_carries_the_count() -> None:
    clock = Clock()
    limiter = DenialLimiter(10.0, clock=clock)
    assert limiter.admit(("10.0.0.1", "GET /x")) == 0
    assert [limiter.admit(("10.0.0.1", "GET /x")) for _ in range(99)] == [None] * 99
    clock.now += 9.9
    assert limiter.admit(("10.0.0.1", "GET /x")) is None
    clock.now += 0.1
    assert limiter.admit(("10.0.0.1", "GET /x")) == 100
    assert limiter.admit(("10.0.0.1", "GET /x")) is None


def test_keys_are_limited_apart() -> None:
    limiter = DenialLimiter(10.0, clock=Clock())
    assert limiter.admit(("alice", "GET /x")) == 0
    assert limiter.admit(("alice", "GET /y")) == 0
    assert limiter.admit(("bob", "GET /x")) == 0
    assert limiter.admit(("alice", "GET /x")) is None


def test_memory_is_bounded_the_least_recently_refused_key_going_first() -> None:
    clock = Clock()
    limiter = DenialLimiter(10.0, max_keys=2, clock=clock)
    limiter.admit("a")
    limiter.admit("b")
    limiter.admit("a")  # refused again: a is now the more recent
    limiter.admit("c")  # b goes
    assert limiter.admit("a") is None and limiter.admit("c") is None
    assert limiter.admit("b") == 0  # forgotten: recorded again at once


def test_an_interval_of_zero_records_every_refusal() -> None:
    limiter = DenialLimiter(0.0, clock=Clock())
    assert [limiter.admit("k") for _ in range(3)] == [0, 0, 0]


class _DownLog(EventLog):
    """A log that refuses every append, as one whose broker is down."""

    def append(self, events: Sequence[Event]) -> Sequence[Recorded]:
        raise Unavailable("the log is down")


def test_a_refusal_that_cannot_be_recorded_is_logged_and_the_caller_still_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    recorder = DenialRecorder(_DownLog(), DenialLimiter(clock=Clock()))
    denial = AuthDenied(status=401, method="GET", path="/api/v1/x")

    def broken(_: int) -> AuthDenied:
        raise RuntimeError("a bug building the record")

    assert recorder.record("k", "anonymous", lambda _: denial) is False
    assert recorder.record("other", "anonymous", broken) is False
    assert "the log is down" in caplog.text and "a bug building the record" in caplog.text
