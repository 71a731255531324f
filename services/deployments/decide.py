"""Pure decisions for deployment commands: (state, command) -> the events to append.

Nothing here reads a store: the service passes the folded `Deployment` (None when
there is none) and what it checked in the registry. Each function validates the
command against the state and raises `InvalidInput` (naming the field), `NotFound`
or `Conflict`; what it returns always folds cleanly onto that state.

Choices worth knowing:
- weights are relative (`{"a": 90, "b": 10}` is 90 %/10 %); a traffic command
  states the whole split: arms it does not name get 0;
- setting traffic by hand ends a running canary plan;
- canary weights are percent: the candidate gets the step's weight, the baseline
  the rest, other arms 0;
- a paused deployment takes every manual command, but no automatic step or trip;
- commands that would change nothing return no events.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.payloads import Payload
from ledgerflow.services.deployments.checks import (
    MAX_DESCRIPTION,
    check_guardrails,
    check_key,
    check_name,
    check_plan,
    check_variant,
    check_variants,
)
from ledgerflow.services.deployments.state import Deployment, trip_reason


def step_weights(state: Deployment, plan: d.CanaryPlan, step: int) -> dict[str, float]:
    """Percent weights at a plan step: the candidate gets the step's weight, the baseline
    the rest, other arms nothing."""
    weights = {v.name: 0.0 for v in state.arms}
    share = plan.steps[step].weight
    weights[plan.candidate] = share
    weights[state.baseline] = 100.0 - share
    return weights


def _all_to(state: Deployment, variant: str) -> dict[str, float]:
    return {v.name: (100.0 if v.name == variant else 0.0) for v in state.arms}


def live(state: Deployment | None, name: str) -> Deployment:
    """The deployment, or NotFound if it never existed or is deleted."""
    if state is None or state.status == "deleted":
        raise NotFound(f"no deployment named {name!r}", kind="deployment", key=name)
    return state


# decisions -----------------------------------------------------------------------------
def create(
    state: Deployment | None,
    *,
    name: object,
    variants: object,
    baseline: object = None,
    description: object = "",
    key_header: object = "X-Ledgerflow-Key",
    key_field: object = None,
    guardrails: object = (),
    plan: object = None,
) -> list[Payload]:
    """A new deployment. The baseline defaults to the first non-shadow variant; with a
    plan, the variants start at its first step's weights."""
    name = check_name(name)
    if state is not None and state.status != "deleted":
        raise AlreadyExists(f"deployment {name!r} already exists; pick another name")
    specs = check_variants(variants)
    arms = [v.name for v in specs if not v.shadow]
    if baseline is None:
        baseline = arms[0]
    if not isinstance(baseline, str) or baseline not in arms:
        raise InvalidInput(
            f"baseline {baseline!r} must be one of the non-shadow variants {arms}",
            field="baseline",
        )
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description must be text of at most {MAX_DESCRIPTION} characters",
            field="description",
        )
    header, key = check_key(key_header, key_field)
    shell = Deployment(name=name, baseline=baseline, variants=specs, weights={})
    checked_plan = None if plan is None else check_plan(shell, plan)
    if checked_plan is not None:
        weights = step_weights(shell, checked_plan, 0)
        specs = tuple(
            v if v.shadow else v.model_copy(update={"weight": weights[v.name]}) for v in specs
        )
    return [
        d.DeploymentCreated(
            name=name,
            description=description,
            baseline=baseline,
            variants=specs,
            key_header=header,
            key_field=key,
            guardrails=check_guardrails(guardrails),
            plan=checked_plan,
        )
    ]


def add_variant(state: Deployment, variant: object) -> list[Payload]:
    spec = check_variant(variant)
    if state.find(spec.name) is not None:
        raise AlreadyExists(f"deployment {state.name!r} already has a variant {spec.name!r}")
    return [d.DeploymentVariantAdded(name=state.name, variant=spec)]


def remove_variant(state: Deployment, variant: str, reason: str = "") -> list[Payload]:
    state.variant(variant)
    if variant == state.baseline:
        raise Conflict(
            f"variant {variant!r} is the baseline of {state.name!r}; promote another variant first"
        )
    if state.plan is not None and state.plan.candidate == variant:
        raise Conflict(
            f"variant {variant!r} is the candidate of the running canary plan; roll back or "
            "clear the plan first"
        )
    if not any(w > 0 for k, w in state.weights.items() if k != variant):
        raise Conflict(f"variant {variant!r} serves all the traffic; move it elsewhere first")
    return [d.DeploymentVariantRemoved(name=state.name, variant=variant, reason=reason)]


def set_traffic(
    state: Deployment, weights: Mapping[str, object], reason: str = ""
) -> list[Payload]:
    """The whole split: arms not named get 0. Ends a running canary plan."""
    if not isinstance(weights, Mapping) or not weights:
        raise InvalidInput("weights must map variant names to weights", field="weights")
    checked: dict[str, float] = {}
    for key, value in weights.items():
        v = state.find(str(key))
        if v is None:
            raise InvalidInput(
                f"deployment {state.name!r} has no variant {key!r}; it has "
                f"{[a.name for a in state.variants]}",
                field=f"weights.{key}",
            )
        if v.shadow:
            raise InvalidInput(
                f"variant {key!r} is a shadow; it gets a copy of all traffic and takes no weight",
                field=f"weights.{key}",
            )
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"weight of {key!r} must be a number", field=f"weights.{key}")
        if not math.isfinite(value) or value < 0:
            raise InvalidInput(
                f"weight of {key!r} must be a finite number >= 0, got {value!r}",
                field=f"weights.{key}",
            )
        checked[v.name] = float(value)
    full = {a.name: checked.get(a.name, 0.0) for a in state.arms}
    if sum(full.values()) <= 0:
        raise InvalidInput("weights must send traffic somewhere (their sum is 0)", field="weights")
    if full == state.weights and state.plan is None:
        return []
    return [d.DeploymentTrafficSet(name=state.name, weights=full, reason=reason)]


def set_plan(state: Deployment, plan: object) -> list[Payload]:
    """Start a canary plan at its first step (or stop the running one with None)."""
    if plan is None:
        if state.plan is None:
            return []
        return [d.DeploymentPlanSet(name=state.name, plan=None)]
    checked = check_plan(state, plan)
    weights = step_weights(state, checked, 0)
    return [d.DeploymentPlanSet(name=state.name, plan=checked, weights=weights)]


def set_guardrails(state: Deployment, guardrails: object) -> list[Payload]:
    checked = check_guardrails(guardrails)
    if checked == state.guardrails:
        return []
    return [d.DeploymentGuardrailsSet(name=state.name, guardrails=checked)]


def _automatic(state: Deployment, what: str) -> None:
    if state.status != "active":
        raise Conflict(f"deployment {state.name!r} is paused; no {what} until it is resumed")


def _judged_on(state: Deployment, version: int | None) -> None:
    """An automatic decision stands only on the state it was judged on."""
    if version is not None and version != state.version:
        raise Conflict(
            f"deployment {state.name!r} has moved on (version {state.version}) since the "
            f"decision was taken on version {version}; decide again on its state now"
        )


def advance_step(
    state: Deployment, requests: int, duration_s: float, version: int | None = None
) -> list[Payload]:
    """The canary's next step, once the current one has held long enough (the deployer
    loop judges that, on `version` of the deployment; this checks there is a next step).
    The event carries the version it follows, so the fold takes it once."""
    _automatic(state, "canary steps")
    _judged_on(state, version)
    if state.plan is None or state.step is None:
        raise Conflict(f"deployment {state.name!r} has no canary plan running")
    nxt = state.step + 1
    if nxt >= len(state.plan.steps):
        raise Conflict(
            f"deployment {state.name!r} is at the last step of its plan; promote "
            f"{state.plan.candidate!r} or roll back"
        )
    return [
        d.DeploymentStepAdvanced(
            name=state.name,
            step=nxt,
            weights=step_weights(state, state.plan, nxt),
            requests=max(0, int(requests)),
            duration_s=max(0.0, float(duration_s)),
            on_version=state.version,
        )
    ]


def trip(
    state: Deployment,
    variant: str,
    guardrail: d.Guardrail,
    observed: float,
    limit: float,
    baseline_value: float | None,
    samples: int,
    version: int | None = None,
) -> list[Payload]:
    """A breached guardrail, and the rollback to the baseline it causes (unless all traffic
    is there already). Judged on `version` of the deployment; the events carry the
    versions they follow, so the fold takes them once."""
    _automatic(state, "automatic rollback")
    _judged_on(state, version)
    state.variant(variant)
    tripped = d.DeploymentGuardrailTripped(
        name=state.name,
        variant=variant,
        guardrail=guardrail,
        observed=observed,
        limit=limit,
        baseline=baseline_value,
        samples=samples,
        on_version=state.version,
    )
    out: list[Payload] = [tripped]
    if not state.on_baseline or state.plan is not None:
        out.append(
            d.DeploymentRolledBack(
                name=state.name,
                to=state.baseline,
                weights=_all_to(state, state.baseline),
                reason=trip_reason(tripped),
                on_version=state.version,  # the fold takes it right after its trip
            )
        )
    return out


def rollback(state: Deployment, reason: str = "") -> list[Payload]:
    """All traffic to the baseline; a running plan stops."""
    if state.on_baseline and state.plan is None:
        return []
    return [
        d.DeploymentRolledBack(
            name=state.name,
            to=state.baseline,
            weights=_all_to(state, state.baseline),
            reason=reason or "rolled back by hand",
        )
    ]


def promote(
    state: Deployment, variant: str, alias: str | None = None, reason: str = ""
) -> list[Payload]:
    """All traffic to `variant`, which becomes the baseline; the plan ends. The caller
    moves `alias` in the same commit."""
    spec = state.variant(variant)
    if spec.shadow:
        raise InvalidInput(
            f"variant {variant!r} is a shadow; add it as a serving variant before promoting it",
            field="variant",
        )
    return [
        d.DeploymentPromoted(
            name=state.name,
            variant=variant,
            weights=_all_to(state, variant),
            model=spec.model,
            version=spec.version,
            alias=alias,
            reason=reason,
        )
    ]


def pause(state: Deployment, reason: str = "") -> list[Payload]:
    if state.status == "paused":
        return []
    return [d.DeploymentPaused(name=state.name, reason=reason)]


def resume(state: Deployment) -> list[Payload]:
    if state.status == "active":
        return []
    return [d.DeploymentResumed(name=state.name)]


def delete(state: Deployment) -> list[Payload]:
    return [d.DeploymentDeleted(name=state.name)]
