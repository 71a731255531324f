"""The deployment fold: what each event does to the aggregate, and what it refuses."""

from __future__ import annotations

import pytest

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.errors import NotFound
from ledgerflow.services.deployments.state import (
    Deployment,
    InvalidTransition,
    apply,
    fold,
)

A = d.VariantSpec(name="a", model="m", version=1, weight=90)
B = d.VariantSpec(name="b", model="m", version=2, weight=10)
S = d.VariantSpec(name="s", model="m", version=3, shadow=True, weight=7)
PLAN = d.CanaryPlan(
    candidate="b",
    steps=(d.CanaryStep(weight=10), d.CanaryStep(weight=50), d.CanaryStep(weight=100)),
)
GUARD = d.Guardrail(metric="error_rate", threshold=0.05)


def created(**kw: object) -> d.DeploymentCreated:
    fields: dict[str, object] = {"name": "web", "baseline": "a", "variants": (A, B, S)}
    fields.update(kw)
    return d.DeploymentCreated.model_validate(fields)


def state(*payloads: d.Payload) -> Deployment:
    got = fold((p, 1000 + i) for i, p in enumerate([created(), *payloads]))
    assert got is not None
    return got


def test_creation_gives_every_arm_a_weight_and_shadows_none() -> None:
    s = state()
    assert s.weights == {"a": 90.0, "b": 10.0}
    assert s.serving == ("a", "b")
    assert [v.name for v in s.shadows] == ["s"]
    assert s.variant("s").weight == 0.0
    assert (s.version, s.created, s.updated, s.status) == (1, 1000, 1000, "active")
    assert s.shares() == {"a": 0.9, "b": 0.1}


def test_the_state_round_trips_through_json() -> None:
    s = apply(state(), d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}), 5)
    assert Deployment.from_dict(s.to_dict()) == s


def test_a_missing_variant_is_not_found_and_names_the_ones_there() -> None:
    with pytest.raises(NotFound, match="has a, b, s"):
        state().variant("zz")


def test_a_creation_with_a_plan_starts_at_its_first_step() -> None:
    s = fold([(created(plan=PLAN), 7)])
    assert s is not None and (s.step, s.step_started) == (0, 7)


def test_traffic_set_names_the_whole_split_and_ends_a_plan() -> None:
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    s = apply(s, d.DeploymentTrafficSet(name="web", weights={"b": 3}), 9)
    assert s.weights == {"a": 0.0, "b": 3.0}
    assert s.serving == ("b",)
    assert s.plan is None and s.step is None
    assert s.variant("b").weight == 3.0


def test_steps_advance_one_at_a_time_within_the_plan() -> None:
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    s = apply(s, d.DeploymentStepAdvanced(name="web", step=1, weights={"a": 50, "b": 50}), 50)
    assert (s.step, s.step_started, s.weights) == (1, 50, {"a": 50.0, "b": 50.0})
    with pytest.raises(InvalidTransition, match="cannot follow step 1"):
        apply(s, d.DeploymentStepAdvanced(name="web", step=3, weights={"b": 1}), 60)
    with pytest.raises(InvalidTransition, match="no canary plan"):
        apply(state(), d.DeploymentStepAdvanced(name="web", step=1, weights={"b": 1}), 60)


def test_a_trip_records_why_and_the_rollback_returns_to_the_baseline() -> None:
    tripped = d.DeploymentGuardrailTripped(
        name="web", variant="b", guardrail=GUARD, observed=0.2, limit=0.05, samples=80
    )
    s = state(tripped)
    assert "error_rate <= 0.05 breached by b: observed 0.2 over 80 samples" in s.last_reason
    assert s.weights == {"a": 90.0, "b": 10.0}
    s = apply(s, d.DeploymentRolledBack(name="web", to="a", weights={"a": 100}, reason="x"), 9)
    assert (s.on_baseline, s.last_action, s.last_reason) == (True, "rolled_back", "x")
    with pytest.raises(InvalidTransition, match="not the baseline"):
        apply(s, d.DeploymentRolledBack(name="web", to="b", weights={"b": 1}), 10)


def test_promotion_makes_the_variant_the_baseline_and_clears_the_plan() -> None:
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    s = apply(
        s,
        d.DeploymentPromoted(name="web", variant="b", weights={"b": 100}, model="m", version=2),
        9,
    )
    assert (s.baseline, s.promoted, s.plan, s.serving) == ("b", "b", None, ("b",))
    with pytest.raises(InvalidTransition, match="serves m/1"):
        apply(
            s,
            d.DeploymentPromoted(name="web", variant="a", weights={"a": 1}, model="m", version=9),
            10,
        )


def test_variants_come_and_go_but_never_the_baseline_or_the_candidate() -> None:
    c = d.VariantSpec(name="c", model="m", version=4, weight=5)
    s = state(d.DeploymentVariantAdded(name="web", variant=c))
    assert s.weights["c"] == 5.0
    s = apply(s, d.DeploymentVariantRemoved(name="web", variant="c"), 3)
    assert "c" not in s.weights and s.find("c") is None
    with pytest.raises(InvalidTransition, match="baseline"):
        apply(s, d.DeploymentVariantRemoved(name="web", variant="a"), 4)
    planned = apply(s, d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 1, "b": 1}), 5)
    with pytest.raises(InvalidTransition, match="candidate"):
        apply(planned, d.DeploymentVariantRemoved(name="web", variant="b"), 6)
    with pytest.raises(InvalidTransition, match="already exists"):
        apply(s, d.DeploymentVariantAdded(name="web", variant=A), 7)


def test_pause_and_resume_flip_the_status_and_restart_the_step_clock() -> None:
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    s = apply(s, d.DeploymentPaused(name="web", reason="look"), 20)
    assert (s.status, s.last_reason) == ("paused", "look")
    s = apply(s, d.DeploymentResumed(name="web"), 30)
    assert (s.status, s.step_started) == ("active", 30)


def test_a_deleted_deployment_takes_no_event_but_a_new_creation() -> None:
    s = state(d.DeploymentDeleted(name="web"))
    assert s.status == "deleted"
    with pytest.raises(InvalidTransition, match="does not exist"):
        apply(s, d.DeploymentPaused(name="web"), 5)
    again = apply(s, created(), 6)
    assert (again.status, again.version, again.created) == ("active", 3, 6)


def test_impossible_sequences_are_refused() -> None:
    with pytest.raises(InvalidTransition, match="does not exist"):
        apply(None, d.DeploymentResumed(name="web"), 1)
    with pytest.raises(InvalidTransition, match="already exists"):
        apply(state(), created(), 2)
    with pytest.raises(InvalidTransition, match="not arms"):
        apply(state(), d.DeploymentTrafficSet(name="web", weights={"s": 1}), 2)
    with pytest.raises(InvalidTransition, match="sum is 0"):
        apply(state(), d.DeploymentTrafficSet(name="web", weights={"a": 0}), 2)
    with pytest.raises(InvalidTransition, match="baseline"):
        apply(None, created(baseline="s"), 1)
    with pytest.raises(InvalidTransition, match="on 'web'"):
        apply(state(), d.DeploymentPaused(name="other"), 2)


def test_every_event_counts_in_the_version_and_names_the_last_action() -> None:
    s = state(d.DeploymentGuardrailsSet(name="web", guardrails=(GUARD,)))
    assert (s.version, s.last_action, s.guardrails) == (2, "guardrails_set", (GUARD,))


def test_a_decision_taken_on_a_version_the_deployment_has_moved_past_is_rejected() -> None:
    """What keeps a deployer from deciding twice: a second deployer (or the same one, its
    views behind the log) that judged the same state decides again, and the fold takes
    only the first decision: here a step, then a trip and its rollback judged on the
    version before the step."""
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    judged = s.version
    step = d.DeploymentStepAdvanced(name="web", step=1, weights={"a": 50, "b": 50})
    s = apply(s, step.model_copy(update={"on_version": judged}), 50)
    tripped = d.DeploymentGuardrailTripped(
        name="web", variant="b", guardrail=GUARD, observed=0.2, limit=0.05, samples=80,
        on_version=judged,
    )  # fmt: skip
    rolled_back = d.DeploymentRolledBack(name="web", to="a", weights={"a": 100}, on_version=judged)
    with pytest.raises(InvalidTransition, match=f"decided on version {judged} .* at version"):
        apply(s, tripped, 60)
    with pytest.raises(InvalidTransition, match=f"decided on version {judged}"):
        apply(s, rolled_back, 60)  # one past its version, but after a step, not its trip
    with pytest.raises(InvalidTransition, match=f"decided on version {judged}"):
        apply(s, step.model_copy(update={"step": 2, "on_version": judged}), 60)


def test_a_guardrails_rollback_follows_its_trip_judged_on_the_same_version() -> None:
    s = state(d.DeploymentPlanSet(name="web", plan=PLAN, weights={"a": 90, "b": 10}))
    judged = s.version
    tripped = d.DeploymentGuardrailTripped(
        name="web", variant="b", guardrail=GUARD, observed=0.2, limit=0.05, samples=80,
        on_version=judged,
    )  # fmt: skip
    rolled_back = d.DeploymentRolledBack(name="web", to="a", weights={"a": 100}, on_version=judged)
    s = apply(apply(s, tripped, 60), rolled_back, 60)
    assert s.on_baseline and s.version == judged + 2
    with pytest.raises(InvalidTransition, match="decided on version"):
        apply(s, tripped, 61)  # the same decision again
    with pytest.raises(InvalidTransition, match="decided on version"):
        apply(s, rolled_back, 61)
    assert (
        apply(s, rolled_back.model_copy(update={"on_version": None}), 61).version == s.version + 1
    )
