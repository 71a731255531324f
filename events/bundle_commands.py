"""Bundle commands (see `ledgerflow.events.commands`): build the bundles of a model
version, and set or clear the per-model policy that builds them when an alias moves.

Targets and aliases travel as given (a list, or one comma-separated string) and are
checked by the bundle decide functions (`ledgerflow.services.bundles.decide`), so a
mistake is refused with the same message and field in every mode.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic

from pydantic import Field, StrictBool

from ledgerflow.events.bundle_entities import Bundle
from ledgerflow.events.bundle_payloads import TARGETS
from ledgerflow.events.commands import ANYONE, NOTHING, Answer, Command, Http, Lookup, Names, R, on
from ledgerflow.events.field_schemas import Alias, stated
from ledgerflow.events.named_resources import model_in_uri, run_in_uri
from ledgerflow.events.permissions import Level
from ledgerflow.events.wire import Out

_POLICY = "/registered-models/{name}/bundle-policy"

Target = Annotated[str, stated(enum=list(TARGETS))]
"""What a bundle is built for (any case)."""


class BundleOut(Out):
    """A bundle as it travels: what the bundles view holds."""

    id: str
    name: str
    version: int
    target: str
    status: str = Field(description="requested, then built or failed")
    source: str
    trigger: str = Field(description="manual, or alias:<alias> when a policy asked for it")
    creation_timestamp: int
    last_updated_timestamp: int
    artifact_uri: str | None = None
    runtime: str | None = None
    size_bytes: int | None = None
    max_abs_diff: float | None = None
    reason: str | None = None
    manifest: dict[str, Any] = Field(default_factory=dict)

    def entity(self) -> Bundle:
        return Bundle(**self.model_dump())


def _bundles_out(bundles: list[Bundle]) -> list[BundleOut]:
    return [BundleOut.model_validate(b) for b in bundles]


def _bundles_in(doc: Any) -> list[Bundle]:
    return [BundleOut.model_validate(d).entity() for d in doc]


def _tags_out(tags: dict[str, str]) -> dict[str, str]:
    return dict(tags)


def _tags_in(doc: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in dict(doc).items()}


def _uri_models(c: Any, _: Lookup) -> list[str]:
    return model_in_uri(c.model_uri)


def _uri_runs(c: Any, _: Lookup) -> list[str]:
    return run_in_uri(c.model_uri)


BUNDLES: Answer[list[Bundle]] = Answer(_bundles_out, _bundles_in, list[BundleOut])
POLICY_TAGS: Answer[dict[str, str]] = Answer(_tags_out, _tags_in, dict[str, str])


class BundleCommand(Command[R], Generic[R]):
    """A command on the bundles of registered models."""


class BuildBundles(BundleCommand[list[Bundle]]):
    """Convert the model version `model_uri` names into one bundle per target, each
    checked for parity with the original; answers the bundles as they ended (built or
    failed), or as requested without `wait`.

    No REST route (`HTTP = None`): a conversion runs next to the event log, on the Ray
    of the process that has it, reading the model's files from the artifact store, and
    takes minutes; a gateway URL answers an InvalidInput saying where to run it.
    """

    NEEDS = ANYONE.plus(
        Names("model", _uri_models, "the model `model_uri` names"),
        Names("run", _uri_runs, "the experiment of the run a `runs:/` model_uri names"),
    )
    """Not offered over the gateway today (see above); declared so it holds wherever it
    is: a bundle shows a model version's files, so building one needs READ on the model."""
    ANSWER = BUNDLES
    model_uri: str = Field(description="models:/NAME/VERSION, models:/NAME@ALIAS or .../latest")
    targets: Annotated[list[Target], Field(min_length=1)] | Target | None = Field(
        None, description="onnx, torchscript, savedmodel (None: all the model's flavor has)"
    )
    wait: StrictBool = Field(True, description="answer once every bundle has ended")
    trigger: str = Field("manual", description="why: manual, or alias:<alias> for a policy")


class SetBundlePolicy(BundleCommand[dict[str, str]]):
    """Replaces the model's policy: without `targets`, every target of the flavor is
    built (a targets list set before is removed). Answers the model tags that now store
    the policy."""

    HTTP = Http(
        "PUT", _POLICY, "Build bundles of a model whenever one of these aliases is set",
        idempotent=True,
    )  # fmt: skip
    NEEDS = on("model", "name", Level.MANAGE)
    ANSWER = POLICY_TAGS
    name: str = Field(description="the registered model")
    on_alias: Annotated[list[Alias], Field(min_length=1)] | Alias = Field(
        description="aliases that trigger builds, e.g. champion"
    )
    targets: Annotated[list[Target], Field(min_length=1)] | Target | None = Field(
        None, description="onnx, torchscript, savedmodel (None: all the model's flavor has)"
    )


class ClearBundlePolicy(BundleCommand[None]):
    """Removes the policy's tags; a model without a policy stays as it is."""

    HTTP = Http("DELETE", _POLICY, "Stop building bundles of a model when aliases move", 204)
    NEEDS = on("model", "name", Level.MANAGE)
    ANSWER = NOTHING
    name: str = Field(description="the registered model")


BUNDLE_COMMANDS: tuple[type[BundleCommand[Any]], ...] = (
    BuildBundles,
    SetBundlePolicy,
    ClearBundlePolicy,
)
