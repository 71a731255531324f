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
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.deployment_entities import Deployment, trip_reason
from ledgerflow.events.errors import AlreadyExists, Conflict, InvalidInput, NotFound
from ledgerflow.events.payloads import Payload

MAX_NAME = 128
MAX_DESCRIPTION = 5000
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_HEADER_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (RFC 9110 token)."""
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_METRIC_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


# checks --------------------------------------------------------------------------------
def check_name(name: object, what: str = "deployment", field: str = "name") -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise InvalidInput(
            f"{what} name {name!r} must start with a letter or digit and hold only letters, "
            "digits, '_', '-' and '.'",
            field=field,
        )
    if len(name) > MAX_NAME:
        raise InvalidInput(
            f"{what} name is {len(name)} characters; the limit is {MAX_NAME}", field=field
        )
    return name


def _model(cls: type[Any], value: object, field: str) -> Any:
    """`value` (a model or a dict) as `cls`, with a validation error naming the field."""
    if isinstance(value, cls):
        return value
    if isinstance(value, BaseModel):
        value = value.model_dump()
    try:
        return cls.model_validate(value)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first.get("loc", ()))
        full = f"{field}.{where}" if where else field
        raise InvalidInput(f"{full}: {first.get('msg', 'invalid')}", field=full) from None


def check_variant(value: object, field: str = "variant") -> d.VariantSpec:
    spec: d.VariantSpec = _model(d.VariantSpec, value, field)
    check_name(spec.name, "variant", f"{field}.name")
    return spec


def check_variants(values: object) -> tuple[d.VariantSpec, ...]:
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInput("variants must be a list of variants", field="variants")
    specs = tuple(check_variant(v, f"variants[{i}]") for i, v in enumerate(values))
    names = [v.name for v in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInput(f"variant names must be unique; repeated: {repeated}", field="variants")
    if not any(not v.shadow and v.weight > 0 for v in specs):
        raise InvalidInput(
            "a deployment needs at least one non-shadow variant with a weight above 0",
            field="variants",
        )
    return specs


def check_guardrails(values: object) -> tuple[d.Guardrail, ...]:
    if values is None:
        return ()
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, Iterable):
        raise InvalidInput("guardrails must be a list of guardrails", field="guardrails")
    out: list[d.Guardrail] = []
    for i, value in enumerate(values):
        field = f"guardrails[{i}]"
        g: d.Guardrail = _model(d.Guardrail, value, field)
        if not _METRIC_RE.fullmatch(g.metric):
            raise InvalidInput(
                f"guardrail metric {g.metric!r} must be error_rate, latency_p99_ms or a "
                "feedback metric name (letters, digits, '_', '.', '-')",
                field=f"{field}.metric",
            )
        if g.relative and g.threshold <= 0:
            raise InvalidInput(
                f"a relative guardrail's threshold is a factor of the baseline and must be "
                f"above 0, got {g.threshold:g}",
                field=f"{field}.threshold",
            )
        if g.metric in d.BUILTIN_GUARDRAIL_METRICS and g.threshold < 0:
            raise InvalidInput(
                f"{g.metric} cannot be negative; threshold {g.threshold:g}",
                field=f"{field}.threshold",
            )
        if g.metric == d.ERROR_RATE and not g.relative and g.threshold > 1:
            raise InvalidInput(
                f"error_rate is a fraction between 0 and 1; threshold {g.threshold:g}",
                field=f"{field}.threshold",
            )
        if any((o.metric, o.bound) == (g.metric, g.bound) for o in out):
            raise InvalidInput(
                f"two {g.bound} guardrails on {g.metric}; keep one", field=f"{field}.metric"
            )
        out.append(g)
    return tuple(out)


def check_plan(state: Deployment, value: object) -> d.CanaryPlan:
    plan: d.CanaryPlan = _model(d.CanaryPlan, value, "plan")
    cand = state.find(plan.candidate)
    if cand is None:
        raise InvalidInput(
            f"plan candidate {plan.candidate!r} is not a variant of {state.name!r}",
            field="plan.candidate",
        )
    if cand.shadow:
        raise InvalidInput(
            f"plan candidate {plan.candidate!r} is a shadow variant, which never serves",
            field="plan.candidate",
        )
    if plan.candidate == state.baseline:
        raise InvalidInput(
            f"plan candidate {plan.candidate!r} is the baseline; a canary moves traffic from "
            "the baseline to another variant",
            field="plan.candidate",
        )
    return plan


def check_key(key_header: object, key_field: object) -> tuple[str, str | None]:
    if not isinstance(key_header, str) or not _HEADER_RE.fullmatch(key_header):
        raise InvalidInput(
            f"key header {key_header!r} is not a valid HTTP header name", field="key_header"
        )
    if key_field is not None and (
        not isinstance(key_field, str) or not _FIELD_RE.fullmatch(key_field)
    ):
        raise InvalidInput(
            f"key field {key_field!r} must name a top-level JSON field (letters, digits, '_', '-')",
            field="key_field",
        )
    return key_header, key_field


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


def advance_step(state: Deployment, requests: int, duration_s: float) -> list[Payload]:
    """The canary's next step, once the current one has held long enough (the deployer
    loop judges that; this checks there is a next step)."""
    _automatic(state, "canary steps")
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
) -> list[Payload]:
    """A breached guardrail, and the rollback to the baseline it causes (unless all traffic
    is there already)."""
    _automatic(state, "automatic rollback")
    state.variant(variant)
    tripped = d.DeploymentGuardrailTripped(
        name=state.name,
        variant=variant,
        guardrail=guardrail,
        observed=observed,
        limit=limit,
        baseline=baseline_value,
        samples=samples,
    )
    out: list[Payload] = [tripped]
    if not state.on_baseline or state.plan is not None:
        out.append(
            d.DeploymentRolledBack(
                name=state.name,
                to=state.baseline,
                weights=_all_to(state, state.baseline),
                reason=trip_reason(tripped),
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
