"""A command whose event the projector rejects (a race decide could not see: two
experiments of one name in flight) fails for its caller with the rejection, whether this
process projected the event (its projector remembers the outcome) or another did (the
dead letters say)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event, Recorded
from ledgerflow.events.errors import AlreadyExists
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.commands import Committer


@pytest.fixture
def backend(data_dir: Path) -> Iterator[Backend]:
    with contextlib.closing(bootstrap(load_settings(tracking_uri=str(data_dir)))) as b:
        yield b


def _two_experiments_named(name: str) -> list[p.ExperimentCreated]:
    return [
        p.ExperimentCreated(experiment_id=eid, name=name, artifact_location=f"/tmp/{eid}")
        for eid in ("9001", "9002")
    ]


def test_a_rejection_reaches_the_caller_from_what_its_process_projected(
    backend: Backend,
) -> None:
    committer = backend.tracking.committer
    with pytest.raises(AlreadyExists, match="experiment.created was rejected: .*same"):
        committer.commit(_two_experiments_named("same"), actor="user:u")
    [first, second] = [
        i.event.id for i in backend.log.read(limit=10_000) if i.event.type == "experiment.created"
    ][-2:]
    outcomes = backend.projector.outcomes([first, second])
    assert outcomes is not None and outcomes[0] is None
    assert outcomes[1] is not None and outcomes[1][0] == "experiment.created"
    assert [d["event_id"] for d in backend.projector.dead_letters()] == [second]


def test_a_rejection_reaches_the_caller_when_another_process_projected_it(
    data_dir: Path,
) -> None:
    """Another projector (another process on these files) applies the command's events
    before the command's own catch-up: this process does not know their outcome and reads
    the dead letters."""
    settings = load_settings(tracking_uri=str(data_dir))
    with (
        contextlib.closing(bootstrap(settings)) as ours,
        contextlib.closing(bootstrap(settings)) as theirs,
    ):

        class ProjectedElsewhere:
            def append(self, events: list[Event]) -> list[Recorded]:
                recorded = ours.log.append(events)
                theirs.projector.catch_up()
                assert ours.projector.outcomes([r.event.id for r in recorded]) is None
                return recorded

        committer = Committer(ProjectedElsewhere(), ours.projector, timeout=10)  # type: ignore[arg-type]
        with pytest.raises(AlreadyExists, match="experiment.created was rejected: .*twice"):
            committer.commit(_two_experiments_named("twice"), actor="user:u")
