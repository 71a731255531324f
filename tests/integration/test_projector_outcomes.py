"""What a projector remembers of the events it applied (`Projector.outcomes`): the last
OUTCOMES_KEPT, oldest dropped first, whatever the size of the transactions that applied
them (a command's few events, or a replay's 20,000 at once)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events.envelope import Event
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.projector import projector as projector_module
from ledgerflow.services.projector.database import make_engine
from ledgerflow.services.projector.projector import Projector

KEPT = 7


def _experiments(start: int, n: int, *, named: str | None = None) -> list[Event]:
    return [
        Event.of(
            p.ExperimentCreated(
                experiment_id=str(i), name=named or f"e{i}", artifact_location=f"/a/{i}"
            ),
            actor="user:u",
        )
        for i in range(start, start + n)
    ]


@pytest.mark.parametrize("batch", [1, 3, KEPT, 20])
def test_the_last_outcomes_are_kept_oldest_dropped_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(projector_module, "OUTCOMES_KEPT", KEPT)
    log = SQLiteEventLog(tmp_path / "log.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'views.db'}", writer=True)
    projector = Projector(log, engine, batch=batch)
    ids: list[str] = []
    try:
        for start, n in ((0, 5), (5, 1), (6, 24), (30, 2)):
            ids += [r.event.id for r in log.append(_experiments(start, n))]
            projector.catch_up()
        # one rejected (a second experiment of a name): dead-lettered, remembered as such
        [twice] = log.append(_experiments(40, 1, named="e0"))
        ids.append(twice.event.id)
        projector.catch_up()
        remembered = projector.outcomes(ids[-KEPT:])
        assert remembered is not None
        assert remembered[:-1] == [None] * (KEPT - 1)
        assert remembered[-1] is not None and remembered[-1][0] == "experiment.created"
        for forgotten in ids[:-KEPT]:
            assert projector.outcomes([forgotten]) is None
    finally:
        engine.dispose()
        log.close()
