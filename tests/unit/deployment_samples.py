"""One sample of every deployment and traffic payload, for codec and projection tests."""

from __future__ import annotations

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.payloads import Payload

_A = d.VariantSpec(name="a", model="m", version=1, weight=90)
_B = d.VariantSpec(name="b", model="m", version=2, bundle_id="bn", weight=10)
_GUARD = d.Guardrail(metric="error_rate", threshold=0.05)
_PLAN = d.CanaryPlan(
    candidate="b", steps=(d.CanaryStep(weight=10, min_requests=100), d.CanaryStep(weight=50))
)

DEPLOYMENT_SAMPLES: list[Payload] = [
    d.DeploymentCreated(
        name="web", baseline="a", variants=(_A, _B), guardrails=(_GUARD,), plan=_PLAN
    ),
    d.DeploymentVariantAdded(
        name="web", variant=d.VariantSpec(name="c", model="m", version=3, shadow=True)
    ),
    d.DeploymentVariantRemoved(name="web", variant="c", reason="done"),
    d.DeploymentTrafficSet(name="web", weights={"a": 50, "b": 50}),
    d.DeploymentPlanSet(name="web", plan=_PLAN, weights={"a": 90, "b": 10}),
    d.DeploymentGuardrailsSet(name="web", guardrails=(_GUARD,)),
    d.DeploymentStepAdvanced(
        name="web", step=1, weights={"a": 50, "b": 50}, requests=120, duration_s=3.5
    ),
    d.DeploymentGuardrailTripped(
        name="web", variant="b", guardrail=_GUARD, observed=0.2, limit=0.05, samples=80
    ),
    d.DeploymentRolledBack(name="web", to="a", weights={"a": 100, "b": 0}, reason="errors"),
    d.DeploymentPromoted(
        name="web", variant="b", weights={"a": 0, "b": 100}, model="m", version=2, alias="champion"
    ),
    d.DeploymentPaused(name="web", reason="investigating"),
    d.DeploymentResumed(name="web"),
    d.DeploymentDeleted(name="web"),
    d.InferenceRecorded(
        deployment="web",
        replica="r1",
        records=(
            d.InferenceRecord(request_id="q1", variant="a", time=1, latency_ms=2.5),
            d.InferenceRecord(
                request_id="q1", variant="c", time=1, latency_ms=3.0, shadow=True, agreed=False
            ),
        ),
    ),
    d.FeedbackRecorded(deployment="web", request_id="q1", value=1.0, variant="a", time=2),
]
