"""Deployment decisions: which events a command becomes, and the errors it raises."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.payloads import Payload
from ledgerflow.services.deployments import decide
from ledgerflow.services.deployments.state import Deployment, apply

A = {"name": "a", "model": "m", "version": 1, "weight": 90}
B = {"name": "b", "model": "m", "version": 2, "weight": 10}
S = {"name": "s", "model": "m", "version": 3, "shadow": True}
PLAN = {"candidate": "b", "steps": [{"weight": 10}, {"weight": 50, "min_requests": 5}]}


def run(state: Deployment | None, payloads: list[Payload]) -> Deployment:
    """The state after the decided events (which must fold)."""
    for p in payloads:
        state = apply(state, p, 1)
    assert state is not None
    return state


def web(**kw: Any) -> Deployment:
    args: dict[str, Any] = {"name": "web", "variants": [A, B, S]}
    args.update(kw)
    return run(None, decide.create(None, **args))


def test_create_defaults_the_baseline_to_the_first_arm() -> None:
    s = web(variants=[S, B, A])
    assert s.baseline == "b"
    assert s.weights == {"b": 10.0, "a": 90.0}


def test_create_with_a_plan_starts_the_variants_at_its_first_step() -> None:
    s = web(
        plan=PLAN, guardrails=[{"metric": "latency_p99_ms", "threshold": 1.5, "relative": True}]
    )
    assert s.weights == {"a": 90.0, "b": 10.0} and s.step == 0
    s = web(plan={"candidate": "b", "steps": [{"weight": 30}]})
    assert s.weights == {"a": 70.0, "b": 30.0}


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"name": "-bad"}, "name", "must start with a letter"),
        ({"variants": []}, "variants", "at least one non-shadow"),
        ({"variants": [S, {**A, "weight": 0}]}, "variants", "at least one non-shadow"),
        ({"variants": [A, A]}, "variants", "repeated: ['a']"),
        ({"variants": [{**A, "version": 0}]}, "variants[0].version", "greater than or equal"),
        ({"variants": [{**A, "name": "a b"}]}, "variants[0].name", "variant name"),
        ({"variants": "a"}, "variants", "list of variants"),
        ({"baseline": "s"}, "baseline", "non-shadow"),
        ({"baseline": "zz"}, "baseline", "non-shadow"),
        ({"plan": {**PLAN, "candidate": "a"}}, "plan.candidate", "is the baseline"),
        ({"plan": {**PLAN, "candidate": "zz"}}, "plan.candidate", "not a variant"),
        ({"plan": {**PLAN, "candidate": "s"}}, "plan.candidate", "shadow"),
        ({"plan": {"candidate": "b", "steps": []}}, "plan.steps", "at least 1"),
        ({"key_header": "bad header"}, "key_header", "HTTP header"),
        ({"key_field": "1x"}, "key_field", "top-level JSON field"),
        ({"guardrails": [{"metric": "x y", "threshold": 1}]}, "guardrails[0].metric", "feedback"),
        (
            {"guardrails": [{"metric": "error_rate", "threshold": 2}]},
            "guardrails[0].threshold",
            "0 and 1",
        ),
        (
            {"guardrails": [{"metric": "revenue", "threshold": 0, "relative": True}]},
            "guardrails[0].threshold",
            "factor",
        ),
        ({"guardrails": [{"metric": "latency_p99_ms"}]}, "guardrails[0].threshold", "required"),
        (
            {"guardrails": [{"metric": "error_rate", "threshold": 0.1}] * 2},
            "guardrails[1].metric",
            "keep one",
        ),
    ],
)
def test_create_refuses_bad_input_naming_the_field(
    kw: dict[str, Any], field: str, message: str
) -> None:
    args: dict[str, Any] = {"name": "web", "variants": [A, B, S]}
    args.update(kw)
    with pytest.raises(InvalidInput, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        decide.create(None, **args)
    assert e.value.field == field


def test_create_refuses_a_live_name_but_reuses_a_deleted_one() -> None:
    s = web()
    with pytest.raises(AlreadyExists, match="already exists"):
        decide.create(s, name="web", variants=[A])
    gone = run(s, decide.delete(s))
    assert decide.create(gone, name="web", variants=[A])


def test_commands_on_a_deleted_deployment_are_not_found() -> None:
    s = web()
    gone = run(s, decide.delete(s))
    with pytest.raises(NotFound, match="no deployment named 'web'"):
        decide.live(gone, "web")
    with pytest.raises(NotFound):
        decide.live(None, "web")


def test_add_and_remove_variant() -> None:
    s = web()
    s = run(s, decide.add_variant(s, {"name": "c", "model": "m", "version": 4, "weight": 5}))
    assert s.weights["c"] == 5.0
    with pytest.raises(AlreadyExists):
        decide.add_variant(s, A)
    with pytest.raises(InvalidInput) as e:
        decide.add_variant(s, {"name": "d", "model": "m"})
    assert e.value.field == "variant.version"
    s = run(s, decide.remove_variant(s, "c", "done"))
    assert s.find("c") is None and s.last_reason == "done"
    with pytest.raises(Conflict, match="baseline"):
        decide.remove_variant(s, "a")
    with pytest.raises(NotFound, match="no variant 'zz'"):
        decide.remove_variant(s, "zz")
    planned = run(s, decide.set_plan(s, PLAN))
    with pytest.raises(Conflict, match="candidate"):
        decide.remove_variant(planned, "b")
    only_a = run(s, decide.set_traffic(s, {"b": 100}))
    with pytest.raises(Conflict, match="serves all the traffic"):
        decide.remove_variant(only_a, "b")


def test_set_traffic_states_the_whole_split() -> None:
    s = web()
    s = run(s, decide.set_traffic(s, {"b": 1}))
    assert s.weights == {"a": 0.0, "b": 1.0}
    assert decide.set_traffic(s, {"b": 1}) == []
    for weights, field in (
        ({"s": 1}, "weights.s"),
        ({"zz": 1}, "weights.zz"),
        ({"a": -1}, "weights.a"),
        ({"a": float("nan")}, "weights.a"),
        ({"a": "x"}, "weights.a"),
        ({"a": 0}, "weights"),
        ({}, "weights"),
    ):
        with pytest.raises(InvalidInput) as e:
            decide.set_traffic(s, weights)
        assert e.value.field == field


def test_set_plan_starts_at_the_first_step_and_none_stops_it() -> None:
    s = web()
    [ev] = decide.set_plan(s, PLAN)
    assert isinstance(ev, d.DeploymentPlanSet) and ev.weights == {"a": 90.0, "b": 10.0}
    s = run(s, [ev])
    s = run(s, decide.set_plan(s, None))
    assert s.plan is None and s.step is None
    assert decide.set_plan(s, None) == []


def test_advance_step_moves_to_the_next_steps_weights_until_the_last() -> None:
    s = run(web(), decide.set_plan(web(), PLAN))
    [ev] = decide.advance_step(s, requests=12, duration_s=3.5)
    assert isinstance(ev, d.DeploymentStepAdvanced)
    assert (ev.step, ev.weights, ev.requests) == (1, {"a": 50.0, "b": 50.0}, 12)
    s = run(s, [ev])
    with pytest.raises(Conflict, match="last step"):
        decide.advance_step(s, 1, 1.0)
    with pytest.raises(Conflict, match="no canary plan"):
        decide.advance_step(web(), 1, 1.0)
    paused = run(s, decide.pause(s, "hold"))
    with pytest.raises(Conflict, match="paused"):
        decide.advance_step(paused, 1, 1.0)


GUARD = d.Guardrail(metric="error_rate", threshold=0.05)


def test_a_trip_rolls_back_to_the_baseline_unless_it_is_there() -> None:
    s = web()
    out = decide.trip(s, "b", GUARD, 0.3, 0.05, 0.01, 100)
    assert [p.TYPE for p in out] == ["deployment.guardrail_tripped", "deployment.rolled_back"]
    s = run(s, out)
    assert s.on_baseline and "breached by b" in s.last_reason
    again = decide.trip(s, "b", GUARD, 0.3, 0.05, 0.01, 100)
    assert [p.TYPE for p in again] == ["deployment.guardrail_tripped"]
    paused = run(s, decide.pause(s))
    with pytest.raises(Conflict, match="paused"):
        decide.trip(paused, "b", GUARD, 0.3, 0.05, 0.01, 100)


def test_rollback_stops_the_plan_and_is_a_no_op_on_the_baseline() -> None:
    s = run(web(), decide.set_plan(web(), PLAN))
    s = run(s, decide.rollback(s, "bad"))
    assert (s.weights, s.plan, s.last_reason) == ({"a": 100.0, "b": 0.0}, None, "bad")
    assert decide.rollback(s) == []


def test_promote_sends_everything_to_the_variant_with_its_model_version() -> None:
    s = web()
    [ev] = decide.promote(s, "b", "champion")
    assert isinstance(ev, d.DeploymentPromoted)
    assert (ev.model, ev.version, ev.alias, ev.weights) == (
        "m",
        2,
        "champion",
        {"a": 0.0, "b": 100.0},
    )
    s = run(s, [ev])
    assert s.baseline == "b"
    with pytest.raises(InvalidInput, match="shadow") as e:
        decide.promote(s, "s")
    assert e.value.field == "variant"


def test_pause_resume_and_guardrails_change_only_when_needed() -> None:
    s = web()
    s = run(s, decide.pause(s, "why"))
    assert decide.pause(s) == []
    manual = run(s, decide.set_traffic(s, {"a": 1, "b": 1}))  # paused still takes commands
    assert manual.weights == {"a": 1.0, "b": 1.0}
    s = run(s, decide.resume(s))
    assert decide.resume(s) == []
    s = run(s, decide.set_guardrails(s, [GUARD]))
    assert s.guardrails == (GUARD,)
    assert decide.set_guardrails(s, [GUARD]) == []


def test_automatic_decisions_name_the_version_they_follow_and_refuse_another() -> None:
    s = run(web(), decide.set_plan(web(), PLAN))
    [step] = decide.advance_step(s, 1, 1.0, version=s.version)
    assert isinstance(step, d.DeploymentStepAdvanced) and step.on_version == s.version
    tripped, rolled_back = decide.trip(s, "b", GUARD, 0.3, 0.05, 0.01, 100, version=s.version)
    assert isinstance(tripped, d.DeploymentGuardrailTripped)
    assert isinstance(rolled_back, d.DeploymentRolledBack)
    assert (tripped.on_version, rolled_back.on_version) == (s.version, s.version)
    assert run(s, [tripped, rolled_back]).on_baseline  # the pair folds in one commit
    moved = run(s, [step])
    with pytest.raises(Conflict, match="moved on"):
        decide.advance_step(moved, 1, 1.0, version=s.version)
    with pytest.raises(Conflict, match="moved on"):
        decide.trip(moved, "b", GUARD, 0.3, 0.05, 0.01, 100, version=s.version)
