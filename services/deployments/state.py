"""The deployment aggregate: its state, and the pure fold that builds it from
`deployment.*` events (the decisions that produce them are `decide`, beside it).

Every model-server replica routes from this fold, the projector stores it as the
deployments view, and the deployer decides from it, so all three agree: the fold is
deterministic (it reads only the events and their times) and total for every sequence
the decisions produce. An event that cannot follow the state (a step past the plan's
last, a variant that does not exist) raises `InvalidTransition`, which the projector
dead-letters.

`weights` always holds every non-shadow variant, 0 included; the variants' own
`weight` mirrors it (and is 0 for shadows, whose weight is ignored).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.errors import NotFound
from ledgerflow.events.payloads import Payload

Status = Literal["active", "paused", "deleted"]


class InvalidTransition(ValueError):
    """The event cannot follow the deployment's current state."""


@dataclass(frozen=True)
class Deployment:
    name: str
    baseline: str
    variants: tuple[d.VariantSpec, ...]
    weights: dict[str, float]
    """Every non-shadow variant's weight (relative; normalized when routing)."""
    status: Status = "active"
    description: str = ""
    key_header: str = "X-Ledgerflow-Key"
    key_field: str | None = None
    guardrails: tuple[d.Guardrail, ...] = ()
    plan: d.CanaryPlan | None = None
    step: int | None = None
    """Index of the canary step in force (None: no plan)."""
    step_started: int | None = None
    """Epoch ms when that step began."""
    last_action: str = "created"
    """The last event's type without its `deployment.` prefix (`rolled_back`, ...)."""
    last_reason: str = ""
    promoted: str | None = None
    """The variant last promoted, if any."""
    created: int = 0
    updated: int = 0
    traffic_since: int = 0
    """Epoch ms when the split last changed: guardrails judge the traffic since then, so a
    variant given traffic again after a rollback is not judged on its old errors."""
    version: int = 0
    """How many events of the stream are folded in (a replica's cache key)."""

    # reads -----------------------------------------------------------------------------
    def find(self, name: str) -> d.VariantSpec | None:
        return next((v for v in self.variants if v.name == name), None)

    def variant(self, name: str) -> d.VariantSpec:
        found = self.find(name)
        if found is None:
            raise NotFound(
                f"deployment {self.name!r} has no variant {name!r}; it has "
                f"{', '.join(v.name for v in self.variants) or 'none'}",
                kind="variant",
                key=f"{self.name}/{name}",
            )
        return found

    @property
    def shadows(self) -> tuple[d.VariantSpec, ...]:
        return tuple(v for v in self.variants if v.shadow)

    @property
    def arms(self) -> tuple[d.VariantSpec, ...]:
        """The variants that can be routed to (not shadows)."""
        return tuple(v for v in self.variants if not v.shadow)

    @property
    def serving(self) -> tuple[str, ...]:
        """Names of the variants that receive traffic now (weight > 0), in variant order."""
        return tuple(v.name for v in self.arms if self.weights.get(v.name, 0.0) > 0)

    @property
    def on_baseline(self) -> bool:
        """Whether all traffic already goes to the baseline."""
        return self.serving == (self.baseline,)

    def shares(self) -> dict[str, float]:
        """Each non-shadow variant's fraction of the traffic (summing to 1)."""
        total = sum(self.weights.values())
        return {k: (w / total if total > 0 else 0.0) for k, w in self.weights.items()}

    # JSON round trip -------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "status": self.status,
            "description": self.description,
            "baseline": self.baseline,
            "variants": [v.model_dump(mode="json") for v in self.variants],
            "weights": dict(self.weights),
            "key_header": self.key_header,
            "key_field": self.key_field,
            "guardrails": [g.model_dump(mode="json") for g in self.guardrails],
            "plan": None if self.plan is None else self.plan.model_dump(mode="json"),
            "step": self.step,
            "step_started": self.step_started,
            "last_action": self.last_action,
            "last_reason": self.last_reason,
            "promoted": self.promoted,
            "created": self.created,
            "updated": self.updated,
            "traffic_since": self.traffic_since,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Deployment:
        plan = doc.get("plan")
        return cls(
            name=doc["name"],
            status=doc["status"],
            description=doc.get("description", ""),
            baseline=doc["baseline"],
            variants=tuple(d.VariantSpec.model_validate(v) for v in doc["variants"]),
            weights={str(k): float(w) for k, w in doc["weights"].items()},
            key_header=doc.get("key_header", "X-Ledgerflow-Key"),
            key_field=doc.get("key_field"),
            guardrails=tuple(d.Guardrail.model_validate(g) for g in doc.get("guardrails", ())),
            plan=None if plan is None else d.CanaryPlan.model_validate(plan),
            step=doc.get("step"),
            step_started=doc.get("step_started"),
            last_action=doc.get("last_action", ""),
            last_reason=doc.get("last_reason", ""),
            promoted=doc.get("promoted"),
            created=int(doc.get("created", 0)),
            updated=int(doc.get("updated", 0)),
            traffic_since=int(doc.get("traffic_since", doc.get("created", 0))),
            version=int(doc.get("version", 0)),
        )


@dataclass(frozen=True, slots=True)
class DeploymentChange:
    """One event of a deployment's stream, as `ledgerflow deployments show` prints it:
    `summary` is the event's payload without the deployment's name."""

    seq: int
    """The deployment's version after the event."""
    time: int
    type: str
    actor: str
    summary: dict[str, Any]


# the fold ------------------------------------------------------------------------------
def fold(events: Iterable[tuple[Payload, int]]) -> Deployment | None:
    """The state after `(payload, time_ms)` pairs of one deployment stream, in order."""
    state: Deployment | None = None
    for payload, time_ms in events:
        state = apply(state, payload, time_ms)
    return state


def apply(state: Deployment | None, payload: Payload, time_ms: int) -> Deployment:
    """The state after one more event of the stream."""
    if isinstance(payload, d.DeploymentCreated):
        if state is not None and state.status != "deleted":
            raise InvalidTransition(f"deployment {payload.name!r} already exists")
        return _created(payload, time_ms, 0 if state is None else state.version)
    if state is None or state.status == "deleted":
        raise InvalidTransition(f"deployment {payload_name(payload)!r} does not exist")
    if payload_name(payload) != state.name:
        raise InvalidTransition(f"event for {payload_name(payload)!r} on {state.name!r}")
    step = _STEPS.get(type(payload))
    if step is None:
        raise InvalidTransition(f"{payload.TYPE} is not a deployment event")
    judged = getattr(payload, "on_version", None)
    if judged is not None and not _follows(state, payload, judged):
        raise InvalidTransition(
            f"{payload.TYPE} was decided on version {judged} of the deployment, which is "
            f"at version {state.version}: taken again, or on a state that has moved on"
        )
    changes = step(state, payload, time_ms)
    new = _sync(state, changes)
    return dataclasses.replace(
        new,
        last_action=payload.TYPE.removeprefix("deployment."),
        updated=time_ms,
        traffic_since=time_ms if new.weights != state.weights else state.traffic_since,
        version=state.version + 1,
    )


def _follows(state: Deployment, payload: Payload, judged: int) -> bool:
    """Whether a decision judged on version `judged` applies to `state`: on that very
    version, or (the rollback a guardrail's trip causes, in the trip's commit) right after
    the trip, which took the version one further."""
    if judged == state.version:
        return True
    return (
        isinstance(payload, d.DeploymentRolledBack)
        and state.last_action == "guardrail_tripped"
        and judged + 1 == state.version
    )


def payload_name(payload: Payload) -> str:
    return str(getattr(payload, "name", ""))


def _created(p: d.DeploymentCreated, time_ms: int, version: int) -> Deployment:
    names = [v.name for v in p.variants]
    if len(set(names)) != len(names):
        raise InvalidTransition(f"variant names repeat: {names}")
    weights = {v.name: v.weight for v in p.variants if not v.shadow}
    base = Deployment(
        name=p.name,
        baseline=p.baseline,
        variants=p.variants,
        weights={},
        description=p.description,
        key_header=p.key_header,
        key_field=p.key_field,
        guardrails=p.guardrails,
        created=time_ms,
        updated=time_ms,
        traffic_since=time_ms,
        version=version + 1,
    )
    if p.baseline not in weights:
        raise InvalidTransition(f"baseline {p.baseline!r} is not a non-shadow variant")
    changes: dict[str, Any] = {"weights": _weights(base, weights, partial=False)}
    if p.plan is not None:
        _check_plan(base, p.plan)
        changes.update(plan=p.plan, step=0, step_started=time_ms)
    return _sync(base, changes)


def _sync(state: Deployment, changes: dict[str, Any]) -> Deployment:
    """Apply `changes`, then make each variant's `weight` mirror `weights`."""
    new = dataclasses.replace(state, **changes)
    variants = tuple(
        v.model_copy(update={"weight": 0.0 if v.shadow else new.weights.get(v.name, 0.0)})
        for v in new.variants
    )
    if variants == new.variants:
        return new
    return dataclasses.replace(new, variants=variants)


def _weights(state: Deployment, given: Mapping[str, float], *, partial: bool) -> dict[str, float]:
    """Every arm's weight: `given`'s for those it names, 0 for the rest."""
    arms = [v.name for v in state.variants if not v.shadow]
    unknown = sorted(set(given) - set(arms))
    if unknown:
        raise InvalidTransition(f"weights name variants that are not arms: {unknown}")
    if any(not math.isfinite(w) or w < 0 for w in given.values()):
        raise InvalidTransition(f"weights must be finite and non-negative: {dict(given)}")
    weights = {a: float(given.get(a, 0.0)) for a in arms}
    if not partial and sum(weights.values()) <= 0:
        raise InvalidTransition("weights must send traffic somewhere (their sum is 0)")
    return weights


def _check_plan(state: Deployment, plan: d.CanaryPlan) -> None:
    cand = state.find(plan.candidate)
    if cand is None or cand.shadow:
        raise InvalidTransition(f"plan candidate {plan.candidate!r} is not an arm")
    if plan.candidate == state.baseline:
        raise InvalidTransition("plan candidate is the baseline")


def _plan_cleared() -> dict[str, Any]:
    return {"plan": None, "step": None, "step_started": None}


def _variant_added(s: Deployment, p: d.DeploymentVariantAdded, t: int) -> dict[str, Any]:
    if s.find(p.variant.name) is not None:
        raise InvalidTransition(f"variant {p.variant.name!r} already exists")
    weights = dict(s.weights)
    if not p.variant.shadow:
        weights[p.variant.name] = p.variant.weight
    return {"variants": (*s.variants, p.variant), "weights": weights}


def _variant_removed(s: Deployment, p: d.DeploymentVariantRemoved, t: int) -> dict[str, Any]:
    if s.find(p.variant) is None:
        raise InvalidTransition(f"variant {p.variant!r} does not exist")
    if p.variant == s.baseline:
        raise InvalidTransition(f"variant {p.variant!r} is the baseline")
    if s.plan is not None and s.plan.candidate == p.variant:
        raise InvalidTransition(f"variant {p.variant!r} is the running plan's candidate")
    weights = {k: w for k, w in s.weights.items() if k != p.variant}
    if sum(weights.values()) <= 0:
        raise InvalidTransition(f"removing {p.variant!r} would leave no traffic")
    variants = tuple(v for v in s.variants if v.name != p.variant)
    return {"variants": variants, "weights": weights, "last_reason": p.reason}


def _traffic_set(s: Deployment, p: d.DeploymentTrafficSet, t: int) -> dict[str, Any]:
    changes: dict[str, Any] = {
        "weights": _weights(s, p.weights, partial=False),
        "last_reason": p.reason,
    }
    if p.cause != "canary":  # a split set by hand (or rollback/promote) ends the plan
        changes.update(_plan_cleared())
    return changes


def _plan_set(s: Deployment, p: d.DeploymentPlanSet, t: int) -> dict[str, Any]:
    if p.plan is None:
        return _plan_cleared()
    _check_plan(s, p.plan)
    return {
        "plan": p.plan,
        "step": 0,
        "step_started": t,
        "weights": _weights(s, p.weights, partial=False),
    }


def _guardrails_set(s: Deployment, p: d.DeploymentGuardrailsSet, t: int) -> dict[str, Any]:
    return {"guardrails": p.guardrails}


def _step_advanced(s: Deployment, p: d.DeploymentStepAdvanced, t: int) -> dict[str, Any]:
    if s.plan is None or s.step is None:
        raise InvalidTransition("no canary plan is running")
    if p.step != s.step + 1 or p.step >= len(s.plan.steps):
        raise InvalidTransition(
            f"step {p.step} cannot follow step {s.step} of a {len(s.plan.steps)}-step plan"
        )
    return {"step": p.step, "step_started": t, "weights": _weights(s, p.weights, partial=False)}


def _guardrail_tripped(s: Deployment, p: d.DeploymentGuardrailTripped, t: int) -> dict[str, Any]:
    if s.find(p.variant) is None:
        raise InvalidTransition(f"variant {p.variant!r} does not exist")
    return {"last_reason": trip_reason(p)}


def trip_reason(p: d.DeploymentGuardrailTripped) -> str:
    g = p.guardrail
    op = "<=" if g.bound == "max" else ">="
    limit = f"{g.threshold:g}x baseline = {p.limit:g}" if g.relative else f"{p.limit:g}"
    return (
        f"guardrail {g.metric} {op} {limit} breached by {p.variant}: "
        f"observed {p.observed:g} over {p.samples} samples"
    )


def _rolled_back(s: Deployment, p: d.DeploymentRolledBack, t: int) -> dict[str, Any]:
    if p.to != s.baseline:
        raise InvalidTransition(f"rollback to {p.to!r}, which is not the baseline {s.baseline!r}")
    weights = _weights(s, p.weights, partial=False)
    return {"weights": weights, "last_reason": p.reason, **_plan_cleared()}


def _promoted(s: Deployment, p: d.DeploymentPromoted, t: int) -> dict[str, Any]:
    v = s.find(p.variant)
    if v is None or v.shadow:
        raise InvalidTransition(f"variant {p.variant!r} is not an arm")
    if (v.model, v.version) != (p.model, p.version):
        raise InvalidTransition(
            f"variant {p.variant!r} serves {v.model}/{v.version}, not {p.model}/{p.version}"
        )
    weights = _weights(s, p.weights, partial=False)
    return {
        "weights": weights,
        "baseline": p.variant,
        "promoted": p.variant,
        "last_reason": p.reason,
        **_plan_cleared(),
    }


def _paused(s: Deployment, p: d.DeploymentPaused, t: int) -> dict[str, Any]:
    return {"status": "paused", "last_reason": p.reason}


def _resumed(s: Deployment, p: d.DeploymentResumed, t: int) -> dict[str, Any]:
    # a resumed plan's step restarts its clock: time spent paused does not count
    return {"status": "active", "step_started": t if s.plan is not None else None}


def _deleted(s: Deployment, p: d.DeploymentDeleted, t: int) -> dict[str, Any]:
    return {"status": "deleted"}


_STEPS: dict[type[Payload], Callable[[Deployment, Any, int], dict[str, Any]]] = {
    d.DeploymentVariantAdded: _variant_added,
    d.DeploymentVariantRemoved: _variant_removed,
    d.DeploymentTrafficSet: _traffic_set,
    d.DeploymentPlanSet: _plan_set,
    d.DeploymentGuardrailsSet: _guardrails_set,
    d.DeploymentStepAdvanced: _step_advanced,
    d.DeploymentGuardrailTripped: _guardrail_tripped,
    d.DeploymentRolledBack: _rolled_back,
    d.DeploymentPromoted: _promoted,
    d.DeploymentPaused: _paused,
    d.DeploymentResumed: _resumed,
    d.DeploymentDeleted: _deleted,
}
