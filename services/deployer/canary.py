"""Canary plans: when the next step is due.

A pure function of the plan, the step index and what the candidate served; the deployer
folds the step from `deployment.step_advanced` events and asks the traffic aggregation
how many requests the candidate served since the step began. The weights each step puts
in force are the deployment's decision (`ledgerflow.services.deployments.decide.step_weights`).
"""

from __future__ import annotations

from ledgerflow.events.deployment_payloads import CanaryPlan


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
