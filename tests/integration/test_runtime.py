"""The Ray wrapper and its in-process twin keep the same contract."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ledgerflow.events.errors import InvalidInput, Timeout
from ledgerflow.workers.runtime import (
    InlineRuntime,
    RayRuntime,
    Resources,
    Runtime,
    TaskCancelled,
    TaskFailed,
)


def square(x: int) -> int:
    return x * x


def boom() -> None:
    raise ValueError("the data is bad")


def sleepy(seconds: float) -> str:
    time.sleep(seconds)
    return "woke"


@pytest.fixture(params=["inline", "ray"])
def runtime(request: pytest.FixtureRequest) -> Iterator[Runtime]:
    if request.param == "ray":
        yield request.getfixturevalue("ray_runtime")
        return
    inline = InlineRuntime()
    yield inline
    inline.shutdown()


def test_a_task_returns_its_result(runtime: Runtime) -> None:
    handle = runtime.submit(square, 7, name="square")
    assert runtime.result(handle, timeout=60) == 49
    assert runtime.state(handle) == "finished"


def test_a_failing_task_reports_its_error_by_type_and_message(runtime: Runtime) -> None:
    handle = runtime.submit(boom, name="boom")
    with pytest.raises(TaskFailed, match="ValueError: the data is bad"):
        runtime.result(handle, timeout=60)
    assert runtime.state(handle) == "failed"


def test_waiting_too_long_is_a_timeout_and_a_cancelled_task_says_so(runtime: Runtime) -> None:
    handle = runtime.submit(sleepy, 30.0, name="sleepy", resources=Resources(cpus=0.5))
    with pytest.raises(Timeout):
        runtime.result(handle, timeout=0.2)
    runtime.cancel(handle)
    with pytest.raises(TaskCancelled):
        runtime.result(handle, timeout=30)
    assert runtime.state(handle) == "cancelled"


def test_bad_addresses_and_resources_are_refused_with_a_reason() -> None:
    with pytest.raises(InvalidInput, match="LEDGERFLOW_RAY_ADDRESS"):
        RayRuntime("http://nope")
    with pytest.raises(InvalidInput, match="bad resources"):
        Resources(cpus=-1)
