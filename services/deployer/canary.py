"""Canary plans: the weights each step puts in force, and when the next step is due.

Pure functions of the plan, the step index and what the candidate served; the deployer
folds the step from `deployment.step_advanced` events and asks the traffic aggregation
how many requests the candidate served since the step began.
"""

from __future__ import annotations

from collections.abc import Sequence

from ledgerflow.events.deployment_payloads import CanaryPlan
from ledgerflow.events.errors import InvalidInput


def weights_for_step(
    plan: CanaryPlan, step: int, baseline: str, variants: Sequence[str]
) -> dict[str, float]:
    """The weights at `step`: the candidate gets the step's percent, the baseline the rest,
    and every other (non-shadow) variant in `variants` none."""
    if not 0 <= step < len(plan.steps):
        raise InvalidInput(
            f"canary step {step} does not exist: the plan has {len(plan.steps)} steps",
            field="step",
        )
    if plan.candidate == baseline:
        raise InvalidInput(
            f"the canary candidate {plan.candidate!r} is the baseline itself", field="candidate"
        )
    for name in (plan.candidate, baseline):
        if name not in variants:
            raise InvalidInput(
                f"variant {name!r} is not a (non-shadow) variant of the deployment",
                field="candidate" if name == plan.candidate else "baseline",
            )
    share = plan.steps[step].weight
    weights = dict.fromkeys(variants, 0.0)
    weights[plan.candidate] = share
    weights[baseline] = 100.0 - share
    return weights


def due(
    plan: CanaryPlan,
    step: int,
    step_started_ms: int,
    now_ms: int,
    candidate_requests_at_step: int,
) -> bool:
    """Whether to advance past `step`: a next step exists and the current step has lasted
    its minimum duration and seen its minimum candidate requests."""
    if step + 1 >= len(plan.steps):
        return False
    current = plan.steps[step]
    lasted = now_ms - step_started_ms >= current.min_duration_s * 1000.0
    return lasted and candidate_requests_at_step >= current.min_requests
