import math

import numpy as np
import pytest

from ledgerflow.events import limits
from ledgerflow.events import payloads as p
from ledgerflow.events.entities import Run, RunData, RunInfo
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.log import TypeMatcher
from ledgerflow.services.projector.queries import downsample
from ledgerflow.services.tracking import decide


def test_a_key_longer_than_250_characters_is_refused_with_the_limit():
    with pytest.raises(InvalidInput, match="limit is 250"):
        limits.check_key("k" * 251, "metric")


@pytest.mark.parametrize("bad", ["", "a\tb", "../x", "a/../b", "/abs", "semi;colon", 12])
def test_bad_key_names_are_refused_with_a_reason(bad):
    with pytest.raises(InvalidInput):
        limits.check_key(bad, "param")


def test_param_and_tag_values_have_their_own_limits():
    limits.check_value("x" * 6000, "param", "p", limits.MAX_PARAM_VALUE_LENGTH)
    with pytest.raises(InvalidInput, match="6001 characters; the limit is 6000"):
        limits.check_value("x" * 6001, "param", "p", limits.MAX_PARAM_VALUE_LENGTH)
    with pytest.raises(InvalidInput, match="the limit is 8000"):
        limits.check_value("x" * 8001, "tag", "t", limits.MAX_TAG_VALUE_LENGTH)


@pytest.mark.parametrize("value", ["0.5", None, [1.0], True, {"a": 1}])
def test_metric_values_must_be_numbers(value):
    with pytest.raises(InvalidInput, match="must be a number"):
        limits.check_metric_value("m", value)


def test_nan_infinities_and_numpy_scalars_are_metric_values():
    assert math.isnan(limits.check_metric_value("m", float("nan")))
    assert limits.check_metric_value("m", -math.inf) == -math.inf
    assert limits.check_metric_value("m", np.float32(0.5)) == 0.5
    assert limits.check_metric_value("m", np.int64(3)) == 3.0


def test_steps_must_be_integers():
    assert limits.check_step(np.int64(4)) == 4
    with pytest.raises(InvalidInput, match="step must be an integer"):
        limits.check_step(1.5)


def _run(stage: str = "active", status: str = "RUNNING") -> RunInfo:
    return RunInfo("r1", "0", "n", "u", status, 1, None, "/a", stage)


def test_logging_the_same_param_value_again_is_a_no_op():
    assert decide.decide_log_params("r1", {"lr": "0.1"}, {"lr": "0.1"}) is None


def test_changing_a_param_names_both_values():
    with pytest.raises(Conflict, match=r"already '0.1'.*tried '0.2'"):
        decide.decide_log_params("r1", {"lr": "0.1"}, {"lr": "0.2"})


def test_only_new_params_are_emitted():
    ev = decide.decide_log_params("r1", {"lr": "0.1"}, {"lr": "0.1", "bs": "8"})
    assert ev is not None and ev.params == {"bs": "8"}


def test_a_deleted_run_accepts_no_logging():
    with pytest.raises(Conflict, match="deleted"):
        decide.require_active_run(_run(stage="deleted"), "r1")
    with pytest.raises(NotFound):
        decide.require_active_run(None, "nope")


def test_a_run_can_only_end_in_a_terminal_status():
    assert decide.decide_finish(_run(), "FAILED", 9).status == "FAILED"
    with pytest.raises(InvalidInput, match="FINISHED, FAILED or KILLED"):
        decide.decide_finish(_run(), "DONE", 9)


def _started(**changes: object) -> p.RunStarted:
    fields: dict[str, object] = {
        "run_id": "r1", "experiment_id": "0", "run_name": "n", "start_time": 1,
        "user_id": "u", "artifact_uri": "/b", "parent_run_id": None,
    } | changes  # fmt: skip
    return p.RunStarted.model_validate(fields)


def test_starting_a_run_again_as_it_was_started_is_a_no_op():
    existing = Run(_run(), RunData(tags={"mlflow.runName": "renamed since"}))
    assert decide.decide_start_run(None, _started()) == _started()
    assert decide.decide_start_run(existing, _started()) is None  # name and tags may move on
    assert decide.decide_start_run(existing, _started(start_time=5), start_time_given=False) is None


@pytest.mark.parametrize(
    "changes",
    [{"experiment_id": "7"}, {"user_id": "v"}, {"start_time": 2}, {"parent_run_id": "p"}],
)
def test_starting_a_run_whose_id_another_run_has_is_already_exists(changes):
    existing = Run(_run(), RunData())
    with pytest.raises(AlreadyExists, match="run r1 already exists.*choose another run_id"):
        decide.decide_start_run(existing, _started(**changes))


def test_a_new_run_gets_its_name_and_parent_as_tags():
    tags = decide.run_tags({"team": 1}, None, "p1", "brave-fox-1")
    assert tags == {"team": "1", "mlflow.runName": "brave-fox-1", "mlflow.parentRunId": "p1"}
    assert decide.run_tags({"mlflow.runName": "mine"}, None, None, "x")["mlflow.runName"] == "mine"
    assert decide.run_tags({}, "given", None, "x")["mlflow.runName"] == "given"


@pytest.mark.parametrize("bad", ["", "../x", "a/b", "-a", "a" * 65, "a\n", 7])
def test_a_chosen_run_id_is_letters_digits_dashes_and_underscores(bad):
    with pytest.raises(InvalidInput, match="is not a run id") as e:
        limits.check_run_id(bad)
    assert e.value.field == "run_id"
    assert limits.check_run_id("0a_B-" + "f" * 59) == "0a_B-" + "f" * 59


def test_deleting_a_missing_tag_says_so():
    with pytest.raises(NotFound, match="no tag 'x'"):
        decide.decide_delete_tag("r1", {}, "x")


def test_type_globs_match_families_of_events():
    m = TypeMatcher(["run.*", "experiment.created"])
    assert m("run.metrics_logged") and m("experiment.created")
    assert not m("experiment.deleted") and not m("model.version_created")
    assert TypeMatcher(None)("anything")


def test_downsampling_keeps_the_ends_and_the_extremes():
    rows = [(i, i, float(i % 100)) for i in range(10_000)]
    rows[5000] = (5000, 5000, 1e6)  # a spike a chart must show
    out = downsample(rows, 100)
    assert len(out) <= 100
    assert out[0] == rows[0] and out[-1] == rows[-1]
    assert (5000, 5000, 1e6) in out
    assert [r[0] for r in out] == sorted(r[0] for r in out)


@pytest.mark.parametrize(
    ("n", "max_points"), [(5, 3), (10, 5), (10, 4), (1000, 7), (3, 2), (100, 100), (50, 2)]
)
def test_downsampling_never_exceeds_the_budget_and_always_keeps_both_ends(n, max_points):
    rows = [(i, i, float((i * 7919) % 13)) for i in range(n)]
    out = downsample(rows, max_points)
    assert len(out) <= max_points
    assert out[0] == rows[0] and out[-1] == rows[-1]
    if n > max_points:
        assert len(out) >= min(max_points, n) - 1
