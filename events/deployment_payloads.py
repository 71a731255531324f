"""Typed payloads for deployments (stream `deployment:<name>`) and their traffic
(stream `traffic:<name>`).

A deployment is an event-sourced aggregate: its variants, weights, canary plan and
guardrails are folded from `deployment.*` events, and every model-server replica
routes from that fold, so replicas agree without talking to each other. What the
replicas served and the outcomes users report are `inference.recorded` and
`feedback.recorded` on the deployment's traffic stream, a separate stream (and
Kafka topic) so the high-volume traffic never slows reading the aggregate.

Weights are non-negative numbers, normalized over the non-shadow variants when
routing (`{"a": 90, "b": 10}` and `{"a": 0.9, "b": 0.1}` route alike).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ledgerflow.events.payloads import Payload

TrafficCause = Literal["manual", "canary", "rollback", "promote"]
GuardrailBound = Literal["max", "min"]
OutcomeKind = Literal["conversion", "reward"]

ERROR_RATE = "error_rate"
LATENCY_P99 = "latency_p99_ms"
BUILTIN_GUARDRAIL_METRICS = (ERROR_RATE, LATENCY_P99)
"""Guardrail metrics measured from inference records; any other name is a feedback
metric (`conversion`, `revenue`, ...) measured from `feedback.recorded`."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class VariantSpec(_Value):
    """One arm: a registered model version, served as its pyfunc model or as a bundle."""

    name: str = Field(min_length=1)
    model: str = Field(min_length=1)
    version: int = Field(ge=1)
    bundle_id: str | None = None
    """Serve this built bundle (ONNX Runtime, TorchScript, SavedModel) instead of pyfunc."""
    weight: float = Field(default=0.0, ge=0)
    shadow: bool = False
    """A shadow variant gets a copy of the traffic; its answers are recorded and compared
    with the answer returned, never returned themselves. Its weight is ignored."""


class Guardrail(_Value):
    """A bound on one metric of a non-baseline variant.

    `metric` is `error_rate`, `latency_p99_ms`, or a feedback metric name. With `relative`,
    the limit is `threshold` times the baseline variant's value (`max` 1.5 on latency: no
    more than 1.5x the baseline's p99); otherwise `threshold` is the limit itself. A guardrail
    is judged only once the variant has `min_samples` observations of the metric.
    """

    metric: str = Field(min_length=1)
    bound: GuardrailBound = "max"
    threshold: float
    relative: bool = False
    min_samples: int = Field(default=50, ge=1)


class CanaryStep(_Value):
    weight: float = Field(ge=0, le=100)
    """Percent of the (non-shadow) traffic the candidate gets at this step."""
    min_duration_s: float = Field(default=0.0, ge=0)
    min_requests: int = Field(default=0, ge=0)
    """Requests the candidate must have served at this step before the next one."""


class CanaryPlan(_Value):
    """Move traffic from the baseline to `candidate` step by step while guardrails hold.
    After the last step the candidate stays at that weight until promoted."""

    candidate: str = Field(min_length=1)
    steps: tuple[CanaryStep, ...] = Field(min_length=1)


class _DeploymentPayload(Payload):
    name: str = Field(min_length=1)

    def stream(self) -> str:
        return f"deployment:{self.name}"


class _Decision(_DeploymentPayload):
    on_version: int | None = Field(default=None, ge=0)
    """The deployment's version (events folded) this decision was judged on: the fold
    rejects it on any other (but for a guardrail's rollback, taken right after its trip),
    so a decision taken on a state that has moved on (by a deployer that lost its lease
    while deciding, or one whose views lagged) is never taken a second time. None: not
    checked (events from before the field existed)."""


class DeploymentCreated(_DeploymentPayload):
    TYPE = "deployment.created"
    description: str = ""
    baseline: str = Field(min_length=1)
    """The variant others are compared with, and the one traffic returns to on rollback."""
    variants: tuple[VariantSpec, ...] = Field(min_length=1)
    key_header: str = "X-Ledgerflow-Key"
    """Request header holding the sticky key (a user id, say)."""
    key_field: str | None = None
    """Or a top-level field of the JSON request body holding it."""
    guardrails: tuple[Guardrail, ...] = ()
    plan: CanaryPlan | None = None


class DeploymentVariantAdded(_DeploymentPayload):
    TYPE = "deployment.variant_added"
    variant: VariantSpec


class DeploymentVariantRemoved(_DeploymentPayload):
    TYPE = "deployment.variant_removed"
    variant: str = Field(min_length=1)
    reason: str = ""


class DeploymentTrafficSet(_DeploymentPayload):
    TYPE = "deployment.traffic_set"
    weights: dict[str, float]
    """Every non-shadow variant's weight after this event."""
    cause: TrafficCause = "manual"
    reason: str = ""


class DeploymentPlanSet(_DeploymentPayload):
    """A new canary plan (or None to stop one); it starts at its first step at once."""

    TYPE = "deployment.plan_set"
    plan: CanaryPlan | None
    weights: dict[str, float] = Field(default_factory=dict)
    """The weights of the plan's first step (empty when the plan is cleared)."""


class DeploymentGuardrailsSet(_DeploymentPayload):
    TYPE = "deployment.guardrails_set"
    guardrails: tuple[Guardrail, ...]


class DeploymentStepAdvanced(_Decision):
    TYPE = "deployment.step_advanced"
    step: int = Field(ge=0)
    """Index of the plan step now in force."""
    weights: dict[str, float]
    requests: int = Field(default=0, ge=0)
    """Requests the candidate served at the step that ended."""
    duration_s: float = Field(default=0.0, ge=0)


class DeploymentGuardrailTripped(_Decision):
    TYPE = "deployment.guardrail_tripped"
    variant: str = Field(min_length=1)
    guardrail: Guardrail
    observed: float
    limit: float
    baseline: float | None = None
    samples: int = Field(ge=0)


class DeploymentRolledBack(_Decision):
    """All traffic back to the baseline; any canary plan stops."""

    TYPE = "deployment.rolled_back"
    to: str = Field(min_length=1)
    weights: dict[str, float]
    reason: str = ""


class DeploymentPromoted(_DeploymentPayload):
    """All traffic to `variant`, which becomes the baseline. When `alias` is set, the same
    commit carries the `model.alias_set` moving it to the variant's model version."""

    TYPE = "deployment.promoted"
    variant: str = Field(min_length=1)
    weights: dict[str, float]
    model: str = Field(min_length=1)
    version: int = Field(ge=1)
    alias: str | None = None
    reason: str = ""


class DeploymentPaused(_DeploymentPayload):
    """Canary steps and automatic rollback stop; traffic stays as it is."""

    TYPE = "deployment.paused"
    reason: str = ""


class DeploymentResumed(_DeploymentPayload):
    TYPE = "deployment.resumed"


class DeploymentDeleted(_DeploymentPayload):
    TYPE = "deployment.deleted"


class InferenceRecord(_Value):
    request_id: str = Field(min_length=1)
    variant: str = Field(min_length=1)
    time: int
    """Epoch ms when the request arrived."""
    latency_ms: float = Field(ge=0)
    ok: bool = True
    error: str | None = None
    shadow: bool = False
    agreed: bool | None = None
    """For a shadow answer: whether it matched the answer returned (None: not compared)."""


class _TrafficPayload(Payload):
    deployment: str = Field(min_length=1)

    def stream(self) -> str:
        return f"traffic:{self.deployment}"


class InferenceRecorded(_TrafficPayload):
    """A batch of what one replica served: replicas flush every few hundred ms, so the log
    holds one event per batch rather than per request."""

    TYPE = "inference.recorded"
    replica: str = Field(min_length=1)
    records: tuple[InferenceRecord, ...] = Field(min_length=1)


class FeedbackRecorded(_TrafficPayload):
    """An outcome for one served request: a conversion (value 0 or 1) or a numeric reward.
    `variant` is the arm that served it when the receiver knew; otherwise the stream
    processor joins it by request id."""

    TYPE = "feedback.recorded"
    request_id: str = Field(min_length=1)
    metric: str = Field(default="conversion", min_length=1)
    kind: OutcomeKind = "conversion"
    value: float
    variant: str | None = None
    time: int


DEPLOYMENT_PAYLOADS: tuple[type[Payload], ...] = (
    DeploymentCreated,
    DeploymentVariantAdded,
    DeploymentVariantRemoved,
    DeploymentTrafficSet,
    DeploymentPlanSet,
    DeploymentGuardrailsSet,
    DeploymentStepAdvanced,
    DeploymentGuardrailTripped,
    DeploymentRolledBack,
    DeploymentPromoted,
    DeploymentPaused,
    DeploymentResumed,
    DeploymentDeleted,
)
TRAFFIC_PAYLOADS: tuple[type[Payload], ...] = (InferenceRecorded, FeedbackRecorded)
