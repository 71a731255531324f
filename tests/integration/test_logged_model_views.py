"""The logged models view folded from `logged_model.*` events: commands through the
service, the same rows again after a replay, and events that cannot follow their
stream dead-lettered."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from ledgerflow.events import logged_model_commands as lc
from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events.errors import Conflict, NotFound
from ledgerflow.events.settings import load_settings
from ledgerflow.services.bootstrap import Backend, bootstrap
from ledgerflow.services.commands import Committer
from ledgerflow.services.projector.tables import view_tables

ACTOR = "user:test"
WANTED = ("logged_models", "logged_model_tags", "logged_model_params", "logged_model_metrics",
          "logged_model_artifacts", "run_model_outputs", "run_model_inputs")  # fmt: skip


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, data_dir: Path) -> Iterator[Backend]:
    """An embedded backend whose views are in SQLite, or in PostgreSQL."""
    views = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    b = bootstrap(load_settings(tracking_uri=str(data_dir), views_db=views))
    yield b
    b.close()


def dump(backend: Backend) -> dict[str, list[tuple[object, ...]]]:
    with backend.projector.engine.connect() as conn:
        return {
            t.name: sorted(tuple(r) for r in conn.execute(select(t)))
            for t in view_tables()
            if t.name in WANTED
        }


def test_replaying_the_log_gives_the_same_logged_model_rows(
    backend: Backend, tmp_path: Path
) -> None:
    service = backend.logged_models
    exp = backend.tracking.default_experiment(actor=ACTOR).experiment_id
    run = backend.tracking.create_run(exp, user_id="test", actor=ACTOR)
    model = service.execute(
        lc.CreateLoggedModel(experiment_id=exp, name="m", source_run_id=run.run_id,
                             params={"lr": "0.1"}, tags={"a": "1"}),
        actor=ACTOR,
    )  # fmt: skip
    on = {"experiment_id": exp, "model_id": model.model_id}
    service.execute(lc.SetLoggedModelTags(**on, tags={"b": "2"}), actor=ACTOR)
    service.execute(lc.DeleteLoggedModelTag(**on, key="a"), actor=ACTOR)
    service.execute(lc.LogLoggedModelParams(**on, params={"depth": "3"}), actor=ACTOR)
    points = [("acc", 0.5, 10, 1), ("acc", float("nan"), 11, 2)]
    service.execute(lc.LogLoggedModelMetrics(**on, points=points, run_id=run.run_id), actor=ACTOR)
    (tmp_path / "w.bin").write_bytes(b"weights")
    stored = backend.artifacts.put_file(service.queries.artifact_key(model.model_id, "w.bin"),
                                        tmp_path / "w.bin")  # fmt: skip
    service.record_artifacts(model.model_id, [("w.bin", stored.size, stored.sha256)], actor=ACTOR)
    service.execute(lc.LogRunOutputs(run_id=run.run_id, models=[(model.model_id, 4)]), actor=ACTOR)
    service.execute(lc.LogRunInputs(run_id=run.run_id, model_ids=[model.model_id]), actor=ACTOR)
    ready = service.execute(lc.FinalizeLoggedModel(**on, status="READY"), actor=ACTOR)
    assert (ready.status, ready.tags, ready.params) == (
        "READY",
        {"b": "2"},
        {"lr": "0.1", "depth": "3"},
    )
    assert service.queries.outputs_of([run.run_id])[run.run_id][0].step == 4
    assert service.queries.inputs_of([run.run_id, "no-such-run"]) == {run.run_id: [model.model_id]}
    assert [(m.key, m.step) for m in ready.metrics] == [("acc", 1), ("acc", 2)]
    assert (
        service.queries.artifact_key(model.model_id) == f"{exp}/models/{model.model_id}/artifacts"
    )

    before = dump(backend)
    assert all(before[name] for name in WANTED)
    backend.projector.rebuild()
    assert dump(backend) == before


def test_a_model_is_not_reached_through_another_experiment(backend: Backend) -> None:
    service = backend.logged_models
    exp = backend.tracking.default_experiment(actor=ACTOR).experiment_id
    model = service.execute(lc.CreateLoggedModel(experiment_id=exp, name="m"), actor=ACTOR)
    other = backend.tracking.get_or_create_experiment("other", actor=ACTOR).experiment_id
    with pytest.raises(NotFound, match=f"in experiment {other}"):
        service.execute(
            lc.DeleteLoggedModel(experiment_id=other, model_id=model.model_id), actor=ACTOR
        )


def test_an_event_on_a_model_that_is_not_there_is_dead_lettered(backend: Backend) -> None:
    committer = Committer(backend.log, backend.projector, 10.0)
    stray = lm.LoggedModelFinalized(model_id="m-none", experiment_id="0", status="READY")
    with pytest.raises(Conflict, match="logged model m-none does not exist"):
        committer.commit([stray], ACTOR)
    [letter] = backend.projector.dead_letters()
    assert (letter["type"], letter["kind"]) == ("logged_model.finalized", "rejected")
