"""Guardrail breaches (absolute and relative, waiting for samples) and canary steps."""

from __future__ import annotations

import pytest

from ledgerflow.events.deployment_payloads import CanaryPlan, CanaryStep, Guardrail, VariantSpec
from ledgerflow.services.analytics.aggregates import Outcome, VariantStats
from ledgerflow.services.deployer.canary import due
from ledgerflow.services.deployer.guardrails import evaluate
from ledgerflow.services.deployments.decide import step_weights
from ledgerflow.services.deployments.state import Deployment

ERRORS = Guardrail(metric="error_rate", threshold=0.05, min_samples=100)
SLOW = Guardrail(metric="latency_p99_ms", threshold=1.5, relative=True, min_samples=100)
CONVERSION = Guardrail(
    metric="conversion", bound="min", threshold=0.9, relative=True, min_samples=50
)


def _stats(**kw: VariantStats) -> dict[str, VariantStats]:
    return dict(kw)


def test_a_failing_variant_breaches_the_error_rate_guardrail() -> None:
    stats = _stats(a=VariantStats("a", 1000, 10), b=VariantStats("b", 200, 30))
    [breach] = evaluate([ERRORS], stats, "a", ["a", "b"])
    assert (breach.variant, breach.observed, breach.limit, breach.samples) == ("b", 0.15, 0.05, 200)
    assert breach.baseline is None
    assert "error_rate" in breach.describe()


def test_a_guardrail_waits_for_min_samples_and_never_judges_the_baseline() -> None:
    stats = _stats(a=VariantStats("a", 1000, 900), b=VariantStats("b", 99, 99))
    assert evaluate([ERRORS], stats, "a", ["a", "b"]) == []


def test_relative_latency_compares_with_the_baseline_once_both_have_samples() -> None:
    stats = _stats(
        a=VariantStats("a", 500, latency_p99_ms=100.0),
        b=VariantStats("b", 500, latency_p99_ms=160.0),
        c=VariantStats("c", 500, latency_p99_ms=140.0),
    )
    [breach] = evaluate([SLOW], stats, "a", ["b", "c"])
    assert (breach.variant, breach.limit, breach.baseline) == ("b", 150.0, 100.0)
    few = {**stats, "a": VariantStats("a", 20, latency_p99_ms=10.0)}
    assert evaluate([SLOW], few, "a", ["b", "c"]) == []


def test_a_min_bound_on_a_feedback_metric_trips_when_conversions_drop() -> None:
    def conv(name: str, n: int, k: int) -> VariantStats:
        return VariantStats(
            name, n, outcomes={"conversion": Outcome.of("conversion", [1.0] * k + [0.0] * (n - k))}
        )

    stats = _stats(a=conv("a", 100, 20), b=conv("b", 100, 10), shadow=VariantStats("shadow", 100))
    [breach] = evaluate([CONVERSION], stats, "a", ["b", "shadow"])
    assert breach.variant == "b"
    assert breach.limit == pytest.approx(0.18)
    assert breach.observed == pytest.approx(0.10)


PLAN = CanaryPlan(
    candidate="b",
    steps=(
        CanaryStep(weight=5, min_duration_s=60, min_requests=100),
        CanaryStep(weight=50, min_requests=500),
        CanaryStep(weight=100),
    ),
)


def _web(*arms: VariantSpec) -> Deployment:
    return Deployment(name="web", baseline="a", variants=arms, weights={})


def _arm(name: str, *, shadow: bool = False) -> VariantSpec:
    return VariantSpec(name=name, model="m", version=1, shadow=shadow)


def test_each_step_gives_the_candidate_its_percent_and_the_baseline_the_rest() -> None:
    three = _web(_arm("a"), _arm("b"), _arm("c"))
    assert step_weights(three, PLAN, 0) == {"a": 95.0, "b": 5.0, "c": 0.0}
    with_shadow = _web(_arm("a"), _arm("b"), _arm("s", shadow=True))
    assert step_weights(with_shadow, PLAN, 2) == {"a": 0.0, "b": 100.0}


def test_the_next_step_is_due_only_after_its_duration_and_requests_and_if_it_exists() -> None:
    assert not due(PLAN, 0, 0, 59_999, 1000)
    assert not due(PLAN, 0, 0, 60_000, 99)
    assert due(PLAN, 0, 0, 60_000, 100)
    assert due(PLAN, 1, 5, 5, 500)
    assert not due(PLAN, 2, 0, 10**12, 10**9)
