"""What a change replaced: the value before and after, for the events that replace one
(an alias moved from version 2 to 3, a stage, a description or tag, a grant, an admin
flag, a deployment's traffic, baseline or status).

Each function runs before the event's own handler, so the views still hold the old value;
the new one is in the event (or, for deployments, in the pure fold applied to the old
state). Both are small JSON objects keyed by the path of what changed on the entity
(`aliases.champion`, `versions.2.stage`, `tags.owner`, `weights`), so each key reads on
its own; None on one side means there was nothing (a new alias) or is nothing any more
(a deleted one).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import Connection, select

from ledgerflow.events import auth_payloads as a
from ledgerflow.events import deployment_payloads as dp
from ledgerflow.events import model_payloads as m
from ledgerflow.events import payloads as p
from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.envelope import Event
from ledgerflow.events.payloads import Payload
from ledgerflow.services.deployments.state import Deployment, InvalidTransition, apply
from ledgerflow.services.projector.auth_tables import PERMISSIONS as PM
from ledgerflow.services.projector.auth_tables import USERS as U
from ledgerflow.services.projector.deployment_handlers import load_deployment
from ledgerflow.services.projector.registry_tables import MODEL_ALIASES as AL
from ledgerflow.services.projector.registry_tables import MODEL_VERSION_TAGS as VT
from ledgerflow.services.projector.registry_tables import MODEL_VERSIONS as V
from ledgerflow.services.projector.registry_tables import REGISTERED_MODEL_TAGS as MT
from ledgerflow.services.projector.registry_tables import REGISTERED_MODELS as M
from ledgerflow.services.projector.tables import EXPERIMENT_TAGS as ET
from ledgerflow.services.projector.tables import EXPERIMENTS as E
from ledgerflow.services.projector.tables import RUNS as R
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W

Side = dict[str, Any] | None
Change = tuple[Side, Side]
Finder = Callable[[Connection, Event], Change | None]
CHANGES: dict[str, Finder] = {}


def changes(*classes: type[Payload]) -> Callable[[Finder], Finder]:
    def register(fn: Finder) -> Finder:
        for cls in classes:
            CHANGES[cls.TYPE] = fn
        return fn

    return register


def change_of(conn: Connection, ev: Event) -> Change | None:
    """(before, after) of what `ev` replaces, read before it is applied; None when it
    replaces nothing (a creation, a metric) or nothing differs."""
    find = CHANGES.get(ev.type)
    if find is None:
        return None
    found = find(conn, ev)
    if found is None or found[0] == found[1]:
        return None
    return found


def _one(conn: Connection, column: Any, *where: Any) -> Any:
    return conn.execute(select(column).where(*where)).scalar()


def _pair(key: str, old: Any, new: Any) -> Change:
    return (None if old is None else {key: old}), (None if new is None else {key: new})


# registry --------------------------------------------------------------------------------


@changes(m.ModelAliasSet, m.ModelAliasDeleted)
def _alias(conn: Connection, ev: Event) -> Change:
    d = cast(m.ModelAliasSet | m.ModelAliasDeleted, ev.data)
    old = _one(conn, AL.c.version, AL.c.name == d.name, AL.c.alias == d.alias)
    return _pair(f"aliases.{d.alias}", old, getattr(d, "version", None))


@changes(m.ModelVersionStageChanged)
def _stage(conn: Connection, ev: Event) -> Change:
    """The version's stage, and those of the versions it archives."""
    d = cast(m.ModelVersionStageChanged, ev.data)
    old = _one(conn, V.c.stage, V.c.name == d.name, V.c.version == d.version)
    if old is None:
        return None, None
    key = f"versions.{d.version}.stage"
    before: dict[str, Any] = {key: old}
    after: dict[str, Any] = {key: d.stage}
    if d.archive_existing_versions and d.stage in ("Staging", "Production"):
        others = conn.execute(
            select(V.c.version)
            .where(V.c.name == d.name, V.c.stage == d.stage, V.c.version != d.version)
            .order_by(V.c.version)
        ).scalars()
        for other in others:
            before[f"versions.{other}.stage"], after[f"versions.{other}.stage"] = (
                d.stage,
                "Archived",
            )
    return before, after


@changes(m.ModelVersionDeleted)
def _version_deleted(conn: Connection, ev: Event) -> Change:
    """The version's stage, and the aliases that named it (they go with it)."""
    d = cast(m.ModelVersionDeleted, ev.data)
    stage = _one(conn, V.c.stage, V.c.name == d.name, V.c.version == d.version)
    if stage is None:
        return None, None
    aliases = conn.execute(
        select(AL.c.alias)
        .where(AL.c.name == d.name, AL.c.version == d.version)
        .order_by(AL.c.alias)
    ).scalars()
    return {
        f"versions.{d.version}.stage": stage,
        **{f"aliases.{a}": d.version for a in aliases},
    }, None


@changes(m.RegisteredModelDescribed)
def _model_described(conn: Connection, ev: Event) -> Change:
    d = cast(m.RegisteredModelDescribed, ev.data)
    return _pair("description", _one(conn, M.c.description, M.c.name == d.name), d.description)


@changes(m.ModelVersionDescribed)
def _version_described(conn: Connection, ev: Event) -> Change:
    d = cast(m.ModelVersionDescribed, ev.data)
    old = _one(conn, V.c.description, V.c.name == d.name, V.c.version == d.version)
    return _pair(f"versions.{d.version}.description", old, d.description)


@changes(m.RegisteredModelRenamed)
def _model_renamed(_: Connection, ev: Event) -> Change:
    d = cast(m.RegisteredModelRenamed, ev.data)
    return _pair("name", d.name, d.new_name)


@changes(m.RegisteredModelTagSet, m.RegisteredModelTagDeleted)
def _model_tag(conn: Connection, ev: Event) -> Change:
    d = cast(m.RegisteredModelTagSet | m.RegisteredModelTagDeleted, ev.data)
    old = _one(conn, MT.c.value, MT.c.name == d.name, MT.c.key == d.key)
    return _pair(f"tags.{d.key}", old, getattr(d, "value", None))


@changes(m.ModelVersionTagSet, m.ModelVersionTagDeleted)
def _version_tag(conn: Connection, ev: Event) -> Change:
    d = cast(m.ModelVersionTagSet | m.ModelVersionTagDeleted, ev.data)
    old = _one(conn, VT.c.value, VT.c.name == d.name, VT.c.version == d.version, VT.c.key == d.key)
    return _pair(f"versions.{d.version}.tags.{d.key}", old, getattr(d, "value", None))


# experiments and runs (not the telemetry: metrics, params and tags only add) -------------


@changes(p.ExperimentRenamed)
def _experiment_renamed(conn: Connection, ev: Event) -> Change:
    d = cast(p.ExperimentRenamed, ev.data)
    return _pair("name", _one(conn, E.c.name, E.c.experiment_id == d.experiment_id), d.name)


@changes(p.ExperimentDeleted, p.ExperimentRestored)
def _experiment_stage(conn: Connection, ev: Event) -> Change:
    experiment_id = cast(p.ExperimentDeleted, ev.data).experiment_id
    old = _one(conn, E.c.lifecycle_stage, E.c.experiment_id == experiment_id)
    new = "deleted" if isinstance(ev.data, p.ExperimentDeleted) else "active"
    return _pair("lifecycle_stage", old, new)


@changes(p.ExperimentTagSet, p.ExperimentTagDeleted)
def _experiment_tag(conn: Connection, ev: Event) -> Change:
    d = cast(p.ExperimentTagSet | p.ExperimentTagDeleted, ev.data)
    old = _one(conn, ET.c.value, ET.c.experiment_id == d.experiment_id, ET.c.key == d.key)
    return _pair(f"tags.{d.key}", old, getattr(d, "value", None))


@changes(p.RunDeleted, p.RunRestored)
def _run_stage(conn: Connection, ev: Event) -> Change:
    run_id = cast(p.RunDeleted, ev.data).run_id
    old = _one(conn, R.c.lifecycle_stage, R.c.run_id == run_id)
    new = "deleted" if isinstance(ev.data, p.RunDeleted) else "active"
    return _pair("lifecycle_stage", old, new)


@changes(p.RunFinished, p.RunResumed)
def _run_status(conn: Connection, ev: Event) -> Change:
    run_id = cast(p.RunFinished, ev.data).run_id
    new = ev.data.status if isinstance(ev.data, p.RunFinished) else "RUNNING"
    return _pair("status", _one(conn, R.c.status, R.c.run_id == run_id), new)


# identities and grants -------------------------------------------------------------------


@changes(a.PermissionSet, a.PermissionRemoved)
def _permission(conn: Connection, ev: Event) -> Change:
    d = cast(a.PermissionSet | a.PermissionRemoved, ev.data)
    old = _one(
        conn, PM.c.level, PM.c.kind == d.kind, PM.c.key == d.key, PM.c.principal == d.principal
    )
    return _pair("level", old, getattr(d, "level", None))


@changes(a.UserAdminChanged)
def _admin(conn: Connection, ev: Event) -> Change:
    d = cast(a.UserAdminChanged, ev.data)
    old = _one(conn, U.c.admin, U.c.name == d.name)
    return _pair("admin", None if old is None else bool(old), d.admin)


@changes(w.WebhookUpdated)
def _webhook(conn: Connection, ev: Event) -> Change:
    """What the update sets, but the secret: only that it changed."""
    d = cast(w.WebhookUpdated, ev.data)
    row = conn.execute(select(W).where(W.c.id == d.id)).first()
    if row is None:
        return None, None
    now = {"url": row.url, "events": json.loads(row.events), "description": row.description,
           "active": bool(row.active)}  # fmt: skip
    hidden = {"id", "secret", "sealed_secret", "secret_key_id"}
    new = {k: v for k, v in d.model_dump(mode="json", exclude=hidden).items()
           if v is not None}  # fmt: skip
    before = {k: now[k] for k in new if now[k] != new[k]}
    after = {k: new[k] for k in before}
    if d.secret is not None or d.sealed_secret is not None:
        before["secret"], after["secret"] = "(old)", "(new)"
    return before or None, after or None


# deployments: the fold's state before and after ------------------------------------------


def _deployment_view(dep: Deployment) -> dict[str, Any]:
    return {
        "status": dep.status,
        "baseline": dep.baseline,
        "weights": dict(dep.weights),
        "variants": [
            f"{v.name}={v.model}/{v.version}" + (" (shadow)" if v.shadow else "")
            for v in dep.variants
        ],
        "step": dep.step,
        "canary": None if dep.plan is None else dep.plan.candidate,
        "guardrails": [g.model_dump(mode="json") for g in dep.guardrails],
    }


@changes(*(c for c in dp.DEPLOYMENT_PAYLOADS if c is not dp.DeploymentCreated))
def _deployment(conn: Connection, ev: Event) -> Change | None:
    """The fields of the deployment's state that the event changes (traffic, baseline,
    status, variants, canary step, guardrails), from the same fold the servers route by."""
    before = load_deployment(conn, str(getattr(ev.data, "name", "")))
    if before is None:
        return None
    try:
        after = apply(before, ev.data, ev.time)
    except InvalidTransition:
        return None  # its handler rejects it: no entry is kept
    old, new = _deployment_view(before), _deployment_view(after)
    moved = [k for k in old if old[k] != new[k]]
    if not moved:
        return None
    return {k: old[k] for k in moved}, {k: new[k] for k in moved}
