"""The watchdog of `ledgerflow server`'s background threads."""

from __future__ import annotations

import threading
import time

import pytest

from ledgerflow.services.watchdog import ServiceFailed, Watchdog


def test_a_thread_that_raises_is_a_failure_named_with_its_reason() -> None:
    dog = Watchdog()
    told: list[tuple[str, str]] = []
    dog.on_failure(lambda name, why: told.append((name, why)))

    def broken(stop: threading.Event) -> None:
        raise OSError("views database is gone")

    dog.spawn("projector", broken).join(5)
    assert dog.failures == {"projector": "OSError: views database is gone"}
    assert told == [("projector", "OSError: views database is gone")]
    with pytest.raises(ServiceFailed, match=r"projector: OSError: views database is gone"):
        dog.check()


def test_a_thread_that_returns_before_stop_is_a_failure() -> None:
    dog = Watchdog()
    dog.spawn("deployer", lambda stop: None).join(5)
    assert dog.failures == {"deployer": "returned without being asked to stop"}


def test_threads_that_stop_when_asked_are_not_failures() -> None:
    dog = Watchdog()
    for name in ("projector", "webhooks"):
        dog.spawn(name, lambda stop: stop.wait())
    dog.join(5)
    assert dog.failures == {}
    dog.check()


def test_a_listener_added_after_a_failure_still_hears_of_it() -> None:
    dog = Watchdog()
    dog.spawn("bundles", lambda stop: 1 / 0).join(5)
    told: list[str] = []
    dog.on_failure(lambda name, why: told.append(name))
    assert told == ["bundles"]


def test_a_component_whose_thread_died_is_a_failure_and_one_closed_on_purpose_is_not() -> None:
    dog = Watchdog()
    dying = threading.Event()
    dog.expect("event hub", lambda: not dying.is_set(), every_s=0.05)
    dog.expect("read cache", lambda: True, every_s=0.05)  # closed on purpose: alive says so
    time.sleep(0.2)
    assert dog.failures == {}
    dying.set()
    deadline = time.monotonic() + 5
    while not dog.failures and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(dog.failures) == {"event hub"} and "thread died" in dog.failures["event hub"]
    dog.join(5)
    assert set(dog.failures) == {"event hub"}  # the prober itself stopped when asked
