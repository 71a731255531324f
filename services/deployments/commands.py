"""Deployment commands (see `ledgerflow.events.commands`): what a caller asks of a
deployment, each with the REST route that carries it.

Variants, guardrails and plans travel as given (`list[Any]`, `Any`) and are checked by
the deployer's decide functions against the state, so a mistake is refused with the same
message and field (`variants[1].version`) whichever way the command came. Answers are
the folded deployment (`Deployment.to_dict()`), exactly what the model servers route by.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import Field, StrictBool, field_validator

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.commands import ANYONE, Answer, Command, Http, Lookup, Names, R, on
from ledgerflow.events.field_schemas import Slug
from ledgerflow.events.named_resources import model_of_variant, models_of_variants
from ledgerflow.events.permissions import Level
from ledgerflow.services.deployments.state import Deployment

DEFAULT_ALIAS = "champion"
"""The registry alias a promotion moves unless told otherwise."""

_VARIANT = "{name, model, version, bundle_id?, weight?, shadow?}"
_GUARDRAIL = "{metric, bound: max|min, threshold, relative?, min_samples?}"
_PLAN = "{candidate, steps: [{weight (percent), min_duration_s?, min_requests?}]}"
_ROOT = "/deployments"
_ONE = _ROOT + "/{name}"


def _dump_feedback(recorded: d.FeedbackRecorded) -> dict[str, Any]:
    return recorded.model_dump(mode="json")


def _variants_models(c: Any, _: Lookup) -> list[str]:
    return models_of_variants(c.variants)


def _variant_model(c: Any, _: Lookup) -> list[str]:
    return model_of_variant(c.variant)


VARIANT_MODELS = Names("model", _variants_models, "every variant's registered model")
VARIANT_MODEL = Names("model", _variant_model, "the variant's registered model")


def _promoted_model(c: Any, lookup: Lookup) -> list[str]:
    """The model whose alias a promotion moves (none without an alias)."""
    model = None if c.alias is None else lookup.variant_model(c.name, c.variant)
    return [model] if model else []


PROMOTED_MODEL = Names(
    "model",
    _promoted_model,
    "the promoted variant's registered model when an alias moves with it",
    Level.MANAGE,
)

STATE: Answer[Deployment] = Answer(Deployment.to_dict, Deployment.from_dict, dict[str, Any])
FEEDBACK: Answer[d.FeedbackRecorded] = Answer(
    _dump_feedback, d.FeedbackRecorded.model_validate, dict[str, Any]
)


class DeploymentCommand(Command[R], Generic[R]):
    """A command on the `deployment:<name>` aggregate."""

    name: str


class CreateDeployment(DeploymentCommand[Deployment]):
    HTTP = Http("POST", _ROOT, "Create a deployment (an A/B test of model versions)", 201)
    NEEDS = ANYONE.plus(VARIANT_MODELS)
    ANSWER = STATE
    name: Slug = Field(description="unique; letters, digits, '_', '-' and '.'")
    variants: list[Any] = Field(description=f"the arms, each {_VARIANT}")
    baseline: str | None = Field(None, description="default: the first non-shadow variant")
    description: str = ""
    key_header: str = Field("X-Ledgerflow-Key", description="request header with the sticky key")
    key_field: str | None = Field(None, description="or a top-level JSON field holding it")
    guardrails: list[Any] = Field(default_factory=list, description=f"each {_GUARDRAIL}")
    plan: Any = Field(None, description=f"a canary plan {_PLAN}")


class DeleteDeployment(DeploymentCommand[None]):
    HTTP = Http("DELETE", _ONE, "Delete a deployment", 204, idempotent=False)
    NEEDS = on("deployment", "name", Level.MANAGE)


class AddVariant(DeploymentCommand[Deployment]):
    HTTP = Http("POST", _ONE + "/variants", f"Add a variant {_VARIANT}", body_field="variant")
    NEEDS = on("deployment", "name", Level.EDIT).plus(VARIANT_MODEL)
    ANSWER = STATE
    variant: dict[str, Any]

    @field_validator("variant", mode="before")
    @classmethod
    def _spec_as_dict(cls, value: object) -> object:
        """A `VariantSpec` as the body it would travel as."""
        return value.model_dump(mode="json") if isinstance(value, d.VariantSpec) else value


class RemoveVariant(DeploymentCommand[Deployment]):
    HTTP = Http(
        "DELETE",
        _ONE + "/variants/{variant}",
        "Remove a variant (not the baseline)",
        query=("reason",),
        idempotent=False,
    )
    NEEDS = on("deployment", "name", Level.EDIT)
    ANSWER = STATE
    variant: str
    reason: str = Field("", description="why, recorded in the history")


class SetTraffic(DeploymentCommand[Deployment]):
    HTTP = Http("PUT", _ONE + "/traffic", "Set the whole traffic split (ends a canary plan)")
    NEEDS = on("deployment", "name", Level.MANAGE)
    ANSWER = STATE
    weights: dict[str, Any] = Field(description="the whole split; arms not named get 0")
    reason: str = ""


class SetPlan(DeploymentCommand[Deployment]):
    HTTP = Http("PUT", _ONE + "/plan", "Start a canary plan at its first step, or stop it (null)")
    NEEDS = on("deployment", "name", Level.MANAGE)
    ANSWER = STATE
    plan: Any = Field(description=f"{_PLAN}, or null to stop the running plan")


class SetGuardrails(DeploymentCommand[Deployment]):
    HTTP = Http("PUT", _ONE + "/guardrails", "Replace the guardrails")
    NEEDS = on("deployment", "name", Level.EDIT)
    ANSWER = STATE
    guardrails: list[Any] = Field(description=f"each {_GUARDRAIL}; [] removes them all")


class Pause(DeploymentCommand[Deployment]):
    HTTP = Http(
        "POST", _ONE + "/pause", "Stop canary steps and automatic rollback", optional_body=True
    )
    NEEDS = on("deployment", "name", Level.EDIT)
    ANSWER = STATE
    reason: str = ""


class Resume(DeploymentCommand[Deployment]):
    HTTP = Http("POST", _ONE + "/resume", "Resume canary steps and guardrails")
    NEEDS = on("deployment", "name", Level.EDIT)
    ANSWER = STATE


class Rollback(DeploymentCommand[Deployment]):
    HTTP = Http(
        "POST",
        _ONE + "/rollback",
        "All traffic back to the baseline; the plan stops",
        optional_body=True,
    )
    NEEDS = on("deployment", "name", Level.MANAGE)
    ANSWER = STATE
    reason: str = ""


class Promote(DeploymentCommand[Deployment]):
    HTTP = Http(
        "POST",
        _ONE + "/promote",
        "All traffic to a variant, which becomes the baseline; the alias moves with it",
    )
    NEEDS = on("deployment", "name", Level.MANAGE).plus(PROMOTED_MODEL)
    ANSWER = STATE
    variant: str
    alias: str | None = Field(
        DEFAULT_ALIAS, description="registry alias moved to the variant's version; null: none"
    )
    reason: str = ""


class RecordFeedback(DeploymentCommand[d.FeedbackRecorded]):
    """An outcome for a served request, given as `value` or (for conversions) as
    `converted`; appended to the traffic stream without waiting for a projection."""

    HTTP = Http("POST", _ONE + "/feedback", "An outcome for a served request", 202)
    NEEDS = on("deployment", "name", Level.EDIT)
    ANSWER = FEEDBACK
    request_id: str = Field(description="the served request's id (X-Request-Id of its answer)")
    value: Any = Field(None, description="0/1 for a conversion, any number for a reward")
    converted: StrictBool | None = Field(None, description="instead of value, for conversions")
    metric: str = "conversion"
    kind: str | None = Field(None, description="conversion (default) or reward")
    variant: str | None = Field(None, description="the arm that served it, if known")


# the deployer loop's own commands (not exposed over REST) --------------------------------
class AdvanceStep(DeploymentCommand[Deployment]):
    """The running canary plan's next step, once the current one has held long enough."""

    requests: int
    duration_s: float
    version: int | None = None
    """The deployment's version the step was judged on: refused (Conflict) on any other."""


class TripGuardrail(DeploymentCommand[Deployment]):
    """A breached guardrail, and the rollback to the baseline it causes."""

    variant: str
    guardrail: d.Guardrail
    observed: float
    limit: float
    baseline_value: float | None
    samples: int
    version: int | None = None
    """The deployment's version the breach was judged on: refused (Conflict) on any other."""


DEPLOYMENT_COMMANDS: tuple[type[DeploymentCommand[Any]], ...] = (
    CreateDeployment,
    DeleteDeployment,
    AddVariant,
    RemoveVariant,
    SetTraffic,
    SetPlan,
    SetGuardrails,
    Pause,
    Resume,
    Rollback,
    Promote,
    RecordFeedback,
    AdvanceStep,
    TripGuardrail,
)
