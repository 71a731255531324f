"""The fault-injection suite's options and its report.

`pytest tests/faults` runs the lean schedule (part of the normal test command);
`pytest tests/faults --soak` a longer one with more load. The schedule's seed comes
from LEDGERFLOW_FAULT_SEED, or is drawn at random; a failed test's report carries a
"fault schedule" section with the seed, the schedule, what the driver did and when,
and the exits nobody asked for, so the run can be replayed.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field

import pytest

from tests.faults.schedule import seed_from_env

SEED = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    # Read now: every test's environment is stripped of LEDGERFLOW_* (tests/conftest.py).
    config.stash[SEED] = seed_from_env()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak",
        action="store_true",
        default=False,
        help="fault-injection suite: a longer schedule with more load (minutes, not seconds)",
    )


@dataclass(frozen=True)
class Mode:
    name: str
    duration_s: float
    """How long the load runs and faults are injected."""
    workers: int
    """SDK load processes."""
    gap_s: tuple[float, float]


LEAN = Mode("lean", duration_s=45.0, workers=3, gap_s=(1.6, 2.8))
SOAK = Mode("soak", duration_s=600.0, workers=5, gap_s=(2.0, 6.0))


@dataclass
class FaultRun:
    seed: int
    mode: Mode
    report: list[str] = field(default_factory=list)
    """What the failure report shows, added to as the test goes."""


SETTLE_S = 480.0
"""Time the test may take beyond its schedule: starting the stack, the stack catching up
(generously: a small machine shared with other work), the checks."""


def mode_of(config: pytest.Config) -> Mode:
    return SOAK if config.getoption("--soak", default=False) else LEAN


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The suite's tests may run past the session's timeout (pyproject) by their schedule."""
    limit = mode_of(config).duration_s + SETTLE_S
    for item in items:
        if "fault_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.timeout(limit))


@pytest.fixture
def fault_run(request: pytest.FixtureRequest) -> FaultRun:
    run = FaultRun(request.config.stash[SEED], mode_of(request.config))
    run.report.append(f"mode {run.mode.name}, seed {run.seed}")
    request.node.fault_run = run
    return run


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, None]:
    outcome = yield
    report = outcome.get_result()
    run: FaultRun | None = getattr(item, "fault_run", None)
    if run is not None and report.failed:
        replay = f"LEDGERFLOW_FAULT_SEED={run.seed} pytest {item.nodeid}"
        if run.mode.name != "lean":
            replay += " --soak"
        report.sections.append(("fault schedule", "\n".join([f"replay: {replay}", *run.report])))
