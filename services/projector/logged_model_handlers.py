"""How `logged_model.*` and `run.outputs_logged` events change the logged models view.

A model's id is new (the service draws it at random); an event on a model that is not
there, or a model in an experiment that is not, is rejected (dead-lettered, and
reported to its caller by the Committer)."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ledgerflow.events import logged_model_payloads as lm
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.handlers import Rejected, _data, handles
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_ARTIFACTS as LA,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_METRICS as LMM,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_PARAMS as LP,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODEL_TAGS as LT,
)
from ledgerflow.services.projector.logged_model_tables import (
    LOGGED_MODELS as L,
)
from ledgerflow.services.projector.logged_model_tables import (
    RUN_MODEL_INPUTS as RI,
)
from ledgerflow.services.projector.logged_model_tables import (
    RUN_MODEL_OUTPUTS as RO,
)
from ledgerflow.services.projector.sql import upsert
from ledgerflow.services.projector.tables import EXPERIMENTS as E
from ledgerflow.services.projector.tables import RUNS as R


def _model(conn: Connection, d: lm._LoggedModelPayload, ev: Event, **changes: Any) -> None:
    """The model must be there, in the experiment the event names; it was updated now."""
    found = conn.execute(select(L.c.experiment_id).where(L.c.model_id == d.model_id)).first()
    if found is None:
        raise Rejected(f"logged model {d.model_id} does not exist")
    if found[0] != d.experiment_id:
        raise Rejected(f"logged model {d.model_id} is not in experiment {d.experiment_id}")
    conn.execute(
        update(L).where(L.c.model_id == d.model_id).values(last_updated_time=ev.time, **changes)
    )


def _pairs(model_id: str, values: dict[str, str]) -> list[dict[str, str]]:
    return [{"model_id": model_id, "key": k, "value": v} for k, v in values.items()]


@handles(lm.LoggedModelCreated)
def logged_model_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelCreated)
    if conn.execute(select(L.c.model_id).where(L.c.model_id == d.model_id)).first():
        raise Rejected(f"logged model {d.model_id} already exists")
    experiment = select(E.c.experiment_id).where(E.c.experiment_id == d.experiment_id)
    if not conn.execute(experiment).first():
        raise Rejected(f"experiment {d.experiment_id} does not exist")
    conn.execute(
        insert(L).values(
            model_id=d.model_id, experiment_id=d.experiment_id, name=d.name,
            artifact_key=d.artifact_key, model_type=d.model_type,
            source_run_id=d.source_run_id, status="PENDING", status_message="",
            lifecycle_stage="active", creation_time=ev.time, last_updated_time=ev.time,
        )
    )  # fmt: skip
    upsert(conn, LT, ("model_id", "key"), _pairs(d.model_id, d.tags))
    upsert(conn, LP, ("model_id", "key"), _pairs(d.model_id, d.params))


@handles(lm.LoggedModelFinalized)
def logged_model_finalized(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelFinalized)
    _model(conn, d, ev, status=d.status, status_message=d.status_message)


@handles(lm.LoggedModelTagsSet)
def logged_model_tags_set(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelTagsSet)
    _model(conn, d, ev)
    upsert(conn, LT, ("model_id", "key"), _pairs(d.model_id, d.tags))


@handles(lm.LoggedModelTagDeleted)
def logged_model_tag_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelTagDeleted)
    _model(conn, d, ev)
    conn.execute(delete(LT).where(LT.c.model_id == d.model_id, LT.c.key == d.key))


@handles(lm.LoggedModelParamsLogged)
def logged_model_params_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelParamsLogged)
    _model(conn, d, ev)
    stored = dict(
        conn.execute(
            select(LP.c.key, LP.c.value).where(
                LP.c.model_id == d.model_id, LP.c.key.in_(list(d.params))
            )
        ).all()
    )
    changed = sorted(k for k, v in d.params.items() if k in stored and stored[k] != v)
    if changed:
        raise Rejected(f"logged model {d.model_id} params {changed} already have other values")
    upsert(conn, LP, ("model_id", "key"), _pairs(d.model_id, d.params))


@handles(lm.LoggedModelMetricsLogged)
def logged_model_metrics_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelMetricsLogged)
    _model(conn, d, ev)
    rows = {
        (key, step, ts): {
            "model_id": d.model_id,
            "key": key,
            "step": step,
            "timestamp": ts,
            "dataset_name": d.dataset_name or "",
            "dataset_digest": d.dataset_digest or "",
            "value": None if math.isnan(value) else value,
            "run_id": d.run_id,
        }
        for key, value, ts, step in d.points
    }
    keys = ("model_id", "key", "step", "timestamp", "dataset_name", "dataset_digest")
    upsert(conn, LMM, keys, list(rows.values()))


@handles(lm.LoggedModelArtifactLogged)
def logged_model_artifact_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelArtifactLogged)
    _model(conn, d, ev)
    row = {"model_id": d.model_id, "path": d.path, "size": d.size, "sha256": d.sha256,
           "time": ev.time}  # fmt: skip
    upsert(conn, LA, ("model_id", "path"), [row])


@handles(lm.LoggedModelDeleted)
def logged_model_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.LoggedModelDeleted)
    _model(conn, d, ev, lifecycle_stage="deleted")


def _run_and_models(conn: Connection, run_id: str, ids: list[str]) -> None:
    if not conn.execute(select(R.c.run_id).where(R.c.run_id == run_id)).first():
        raise Rejected(f"run {run_id} does not exist")
    known = set(conn.execute(select(L.c.model_id).where(L.c.model_id.in_(ids))).scalars())
    missing = sorted(set(ids) - known)
    if missing:
        raise Rejected(f"logged models {missing} do not exist")


@handles(lm.RunOutputsLogged)
def run_outputs_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.RunOutputsLogged)
    _run_and_models(conn, d.run_id, [m.model_id for m in d.models])
    rows = [{"run_id": d.run_id, "model_id": m.model_id, "step": m.step} for m in d.models]
    upsert(conn, RO, ("run_id", "model_id"), rows)


@handles(lm.RunModelInputsLogged)
def run_model_inputs_logged(conn: Connection, ev: Event) -> None:
    d = _data(ev, lm.RunModelInputsLogged)
    ids = list(dict.fromkeys(d.model_ids))
    _run_and_models(conn, d.run_id, ids)
    held = set(
        conn.execute(
            select(RI.c.model_id).where(RI.c.run_id == d.run_id, RI.c.model_id.in_(ids))
        ).scalars()
    )
    new = [{"run_id": d.run_id, "model_id": m} for m in ids if m not in held]
    if new:
        conn.execute(insert(RI), new)
