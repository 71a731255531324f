"""Pure decisions for bundle commands: which targets to build, and the registered-model
tag events that set or clear a bundle policy.

The policy is per model, stored as two registered-model tags, so it is an ordinary
registry event and shows wherever tags do:

    ledgerflow.bundle.on_alias = champion[,prod]
    ledgerflow.bundle.targets  = onnx[,torchscript]    (absent: every target of the flavor)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ledgerflow.events import bundle_commands as bc
from ledgerflow.events import bundle_payloads as b
from ledgerflow.events import model_payloads as m
from ledgerflow.events.entities import RegisteredModel
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.payloads import Payload
from ledgerflow.services.registry.decide import check_alias

ON_ALIAS_TAG = "ledgerflow.bundle.on_alias"
TARGETS_TAG = "ledgerflow.bundle.targets"


def check_targets(targets: Sequence[str] | str | None) -> list[str] | None:
    """The targets asked for, lower-cased and without repeats (None: the flavor's)."""
    if targets is None:
        return None
    if isinstance(targets, str):
        targets = [t for t in targets.split(",") if t.strip()]
    chosen = [t.strip().lower() for t in targets]
    unknown = sorted(set(chosen) - set(b.TARGETS))
    if unknown or not chosen:
        raise InvalidInput(
            f"bundle targets {unknown or '[]'}: choose from {', '.join(b.TARGETS)}",
            field="targets",
        )
    return list(dict.fromkeys(chosen))


@dataclass(frozen=True)
class Policy:
    aliases: frozenset[str]
    targets: list[str] | None


def policy_tags(
    on_alias: Sequence[str] | str, targets: Sequence[str] | str | None
) -> dict[str, str]:
    """The model tags that store a policy, checked."""
    aliases = [on_alias] if isinstance(on_alias, str) else list(on_alias)
    if not aliases:
        raise InvalidInput("name at least one alias that triggers builds", field="on_alias")
    tags = {ON_ALIAS_TAG: ",".join(check_alias(a.strip()) for a in aliases)}
    chosen = check_targets(targets)
    if chosen is not None:
        tags[TARGETS_TAG] = ",".join(chosen)
    return tags


def policy_from_tags(tags: Mapping[str, str]) -> Policy | None:
    raw = tags.get(ON_ALIAS_TAG, "")
    aliases = frozenset(a.strip() for a in raw.split(",") if a.strip())
    if not aliases:
        return None
    targets = tags.get(TARGETS_TAG)
    return Policy(aliases, check_targets(targets.split(",")) if targets else None)


def wants_build(policy: Policy | None, alias: str) -> bool:
    return policy is not None and alias in policy.aliases


def decide_set_policy(model: RegisteredModel, c: bc.SetBundlePolicy) -> list[Payload]:
    """The tags of the new policy; a targets tag of an earlier policy goes when the new
    one builds every target."""
    tags = policy_tags(c.on_alias, c.targets)
    events: list[Payload] = [
        m.RegisteredModelTagSet(name=model.name, key=k, value=v) for k, v in tags.items()
    ]
    if TARGETS_TAG not in tags and TARGETS_TAG in model.tags:
        events.append(m.RegisteredModelTagDeleted(name=model.name, key=TARGETS_TAG))
    return events


def decide_clear_policy(model: RegisteredModel) -> list[Payload]:
    """The policy's tags that the model has, deleted (none: nothing to do)."""
    return [
        m.RegisteredModelTagDeleted(name=model.name, key=key)
        for key in (ON_ALIAS_TAG, TARGETS_TAG)
        if key in model.tags
    ]
