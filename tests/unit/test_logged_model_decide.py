"""Decisions on MLflow 3 logged models: which events a command leads to, and what it
refuses, from plain values."""

from __future__ import annotations

import pytest

from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events.errors import Conflict, InvalidInput, NotFound
from ledgerflow.events.logged_model_entities import LoggedModel
from ledgerflow.services.logged_models import decide

MODEL = LoggedModel(
    model_id="m-1", experiment_id="7", name="model", artifact_key="7/models/m-1/artifacts",
    status="PENDING", creation_time=1, last_updated_time=1, tags={"a": "1"},
    params={"lr": "0.1"},
)  # fmt: skip


def create(**kw: object) -> lm.LoggedModelCreated:
    args: dict[str, object] = {
        "model_id": "m-1", "experiment_id": "7", "name": "model", "model_type": None,
        "source_run_id": None, "params": {}, "tags": {}, "run_experiment": None,
    }  # fmt: skip
    args.update(kw)
    return decide.decide_create(**args)  # type: ignore[arg-type]


def test_a_new_model_lives_under_its_experiments_models_folder() -> None:
    created = create(params={"lr": 0.1}, tags={"k": 2}, model_type="sklearn")
    assert created.artifact_key == "7/models/m-1/artifacts"
    assert (created.params, created.tags, created.model_type) == (
        {"lr": "0.1"},
        {"k": "2"},
        "sklearn",
    )
    assert created.stream() == "logged_model:m-1"


def test_a_model_from_a_run_that_does_not_exist_is_not_found() -> None:
    with pytest.raises(NotFound, match="Run with id=r9 not found"):
        create(source_run_id="r9", run_experiment=None)
    assert create(source_run_id="r1", run_experiment="3").source_run_id == "r1"


def test_an_empty_name_is_refused_naming_the_field() -> None:
    with pytest.raises(InvalidInput) as e:
        create(name="  ")
    assert e.value.field == "name"


def test_a_model_is_found_only_through_its_own_experiment_and_while_active() -> None:
    assert decide.require_in(MODEL, "m-1", "7") is MODEL
    with pytest.raises(NotFound, match="in experiment 8"):
        decide.require_in(MODEL, "m-1", "8")
    with pytest.raises(NotFound):
        decide.require_in(None, "m-1", "7")
    from dataclasses import replace

    with pytest.raises(NotFound):
        decide.require_in(replace(MODEL, lifecycle_stage="deleted"), "m-1", "7")


def test_finalizing_gives_ready_or_failed_and_nothing_else() -> None:
    assert decide.decide_finalize(MODEL, "READY", "").status == "READY"
    assert decide.decide_finalize(MODEL, "FAILED", "upload broke").status_message == "upload broke"
    with pytest.raises(InvalidInput):
        decide.decide_finalize(MODEL, "PENDING", "")


def test_params_are_immutable_and_the_same_value_again_is_no_event() -> None:
    assert decide.decide_log_params(MODEL, {"lr": "0.1"}) is None
    logged = decide.decide_log_params(MODEL, {"lr": "0.1", "depth": 3})
    assert logged is not None and logged.params == {"depth": "3"}
    with pytest.raises(Conflict, match="already '0.1'"):
        decide.decide_log_params(MODEL, {"lr": "0.2"})


def test_deleting_a_tag_the_model_lacks_is_not_found() -> None:
    assert decide.decide_delete_tag(MODEL, "a").key == "a"
    with pytest.raises(NotFound, match="No tag with key 'b'"):
        decide.decide_delete_tag(MODEL, "b")
    assert decide.decide_set_tags(MODEL, {}) is None


def test_a_run_outputs_only_models_that_exist() -> None:
    out = decide.decide_outputs("r1", [("m-1", 3)], {"m-1": MODEL})
    assert out.models == (lm.ModelOutput(model_id="m-1", step=3),) and out.stream() == "run:r1"
    with pytest.raises(NotFound, match="m-2"):
        decide.decide_outputs("r1", [("m-2", 0)], {"m-1": MODEL})


def test_artifact_paths_are_kept_inside_the_models_root() -> None:
    [logged] = decide.decide_artifacts(MODEL, [("./dir//w.bin", 4, "0" * 64)])
    assert logged.path == "dir/w.bin"
    with pytest.raises(InvalidInput, match=r"\.\."):
        decide.decide_artifacts(MODEL, [("../x", 1, "0" * 64)])


def test_a_models_metric_points_are_checked_as_a_runs_are() -> None:
    logged = decide.decide_metrics(
        MODEL, [("acc", 0.5, 10, 2)], run_id="r1", dataset_name="", dataset_digest=None
    )
    assert (logged.points, logged.run_id, logged.dataset_name) == (
        (("acc", 0.5, 10, 2),),
        "r1",
        None,
    )
    with pytest.raises(InvalidInput):
        decide.decide_metrics(
            MODEL, [("acc", "high", 10, 2)], run_id=None, dataset_name=None, dataset_digest=None
        )
