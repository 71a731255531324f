"""A run starts once: its start's event id is derived from the run's id, so a start sent
again before the first was projected (a retry after a lost answer, two gateways, a spool
shipped twice) is the same event, which the log stores once and the projector applies
once: no second copy on the log, no dead letter. Someone else's start of that id is
still refused."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerflow.events import payloads as p
from ledgerflow.events import tracking_commands as tc
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import AlreadyExists
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap

RUN = "5f0c2a9e7d3b4c1a8e6f0b2d4c6a8e0f"


@pytest.fixture
def backend(data_dir: Path) -> Iterator[Backend]:
    with contextlib.closing(bootstrap(load_settings(tracking_uri=str(data_dir)))) as b:
        yield b


def _start(backend: Backend, experiment_id: str, user: str) -> p.RunStarted:
    return p.RunStarted(
        run_id=RUN, experiment_id=experiment_id, run_name="r", start_time=1_000, user_id=user,
        artifact_uri=backend.tracking.artifacts.uri(f"{experiment_id}/{RUN}/artifacts"),
        tags={"mlflow.runName": "r", "mlflow.user": user},
    )  # fmt: skip


def _starts(backend: Backend) -> list[str]:
    return [i.event.id for i in backend.log.read(limit=10_000) if i.event.type == "run.started"]


def test_the_same_start_is_the_same_event_and_other_events_are_each_new() -> None:
    start = p.RunStarted(
        run_id="r1", experiment_id="0", run_name="r", start_time=1, user_id="u", artifact_uri="a"
    )
    assert Event.of(start).id == Event.of(start.model_copy(update={"start_time": 2})).id
    assert Event.of(start).id != Event.of(start.model_copy(update={"run_id": "r2"})).id
    params = p.RunParamsLogged(run_id="r1", params={"a": "1"})
    assert Event.of(params).id != Event.of(params).id


def test_a_start_sent_again_before_the_first_is_projected_is_stored_and_applied_once(
    backend: Backend,
) -> None:
    exp = backend.tracking.execute(tc.CreateExperiment(name="twice"), actor="user:u")
    backend.log.append([Event.of(_start(backend, exp, "u"), actor="user:u")])  # not projected
    info = backend.tracking.create_run(
        exp, user_id="u", run_name="r", start_time=1_000, actor="user:u", run_id=RUN
    )
    assert info.run_id == RUN and info.start_time == 1_000
    assert len(_starts(backend)) == 1
    assert backend.projector.dead_letters() == []


def test_another_start_of_a_run_id_whose_first_start_is_not_projected_yet_is_refused(
    backend: Backend,
) -> None:
    exp = backend.tracking.execute(tc.CreateExperiment(name="taken"), actor="user:u")
    backend.log.append([Event.of(_start(backend, exp, "alice"), actor="user:alice")])
    with pytest.raises(AlreadyExists, match=f"run {RUN} already exists .*user 'alice'"):
        backend.tracking.create_run(
            exp, user_id="bob", start_time=1_000, actor="user:bob", run_id=RUN
        )
    assert backend.queries.get_run(RUN).info.user_id == "alice"
    assert len(_starts(backend)) == 1 and backend.projector.dead_letters() == []
