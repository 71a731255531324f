"""Validating what deployment commands are given: names, variants, guardrails, plans and
the sticky key. Each check returns the value as a payload type, or raises InvalidInput
naming the field the way the REST body and the SDK call both spell it
(`variants[1].version`)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ValidationError

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import now_ms
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.limits import SLUG_PATTERN
from ledgerflow.services.deployments.state import Deployment

MAX_NAME = 128
MAX_DESCRIPTION = 5000
_NAME_RE = re.compile(SLUG_PATTERN)
_HEADER_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
"""An HTTP header name (RFC 9110 token)."""
_FIELD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
METRIC_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]*$"
_METRIC_RE = re.compile(METRIC_PATTERN)


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


def check_metric(metric: object, field: str = "metric") -> str:
    """A feedback metric's name (`conversion`, `revenue`, ...)."""
    if not isinstance(metric, str) or not _METRIC_RE.fullmatch(metric):
        raise InvalidInput(
            f"metric {metric!r} must be a name of letters, digits, '_', '.', '-'", field=field
        )
    return metric


def feedback(
    state: Deployment,
    request_id: object,
    value: object,
    metric: object = "conversion",
    kind: object = "conversion",
    variant: object = None,
) -> d.FeedbackRecorded:
    """An outcome for a served request as its payload: a conversion (0/1, or true/false)
    or a reward (any finite number); the gateway and the replicas both take it this way."""
    if not isinstance(request_id, str) or not request_id.strip():
        raise InvalidInput("request_id must be the served request's id", field="request_id")
    check_metric(metric)
    if kind not in ("conversion", "reward"):
        raise InvalidInput(f"kind must be conversion or reward, got {kind!r}", field="kind")
    if variant is not None:
        if not isinstance(variant, str):
            raise InvalidInput(f"variant must be a variant name, got {variant!r}", field="variant")
        state.variant(variant)
    return d.FeedbackRecorded(
        deployment=state.name,
        request_id=request_id,
        metric=str(metric),
        kind=kind,
        value=_outcome(value, kind),
        variant=variant,
        time=now_ms(),
    )


def _outcome(value: object, kind: str) -> float:
    if isinstance(value, bool):
        if kind != "conversion":
            raise InvalidInput("a reward must be a number, not true/false", field="value")
        return 1.0 if value else 0.0
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidInput(f"value must be a finite number, got {value!r}", field="value")
    if kind == "conversion" and value not in (0, 1):
        raise InvalidInput(
            f"a conversion is 0 or 1 (or true/false), got {value!r}; use kind='reward' for "
            "other outcomes",
            field="value",
        )
    return float(value)
