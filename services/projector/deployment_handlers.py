"""How `deployment.*` events change the deployment views: through the same fold the
model servers route by, so the stored state is exactly the fold of the stream.

An event that cannot follow the stream's state is rejected (dead-lettered). Traffic
events (`inference.recorded`, `feedback.recorded`) have no handler here: the
projector skips them at a dictionary lookup, and the stream statistics fold them.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, delete, insert, select, update

from ledgerflow.events import deployment_payloads as d
from ledgerflow.events.envelope import Event
from ledgerflow.services.deployments.state import Deployment, InvalidTransition, apply
from ledgerflow.services.projector.deployment_tables import DEPLOYMENT_HISTORY as H
from ledgerflow.services.projector.deployment_tables import DEPLOYMENT_VARIANTS as DV
from ledgerflow.services.projector.deployment_tables import DEPLOYMENTS as D
from ledgerflow.services.projector.handlers import Rejected, handles


def load_deployment(conn: Connection, name: str) -> Deployment | None:
    """The deployment as folded so far (None: no such deployment yet)."""
    row = conn.execute(select(D.c.state).where(D.c.name == name)).first()
    return None if row is None else Deployment.from_dict(json.loads(row.state))


def _store(conn: Connection, before: Deployment | None, after: Deployment) -> None:
    values = {
        "status": after.status,
        "baseline": after.baseline,
        "description": after.description,
        "state": json.dumps(after.to_dict(), sort_keys=True),
        "creation_time": after.created,
        "last_updated_time": after.updated,
        "version": after.version,
    }
    if before is None:
        conn.execute(insert(D).values(name=after.name, **values))
    else:
        conn.execute(update(D).where(D.c.name == after.name).values(**values))
    if before is None or before.variants != after.variants or after.status == "deleted":
        conn.execute(delete(DV).where(DV.c.deployment == after.name))
        rows = [
            {"deployment": after.name, "name": v.name, "model": v.model, "version": v.version,
             "bundle_id": v.bundle_id, "weight": v.weight, "shadow": v.shadow}
            for v in after.variants
        ]  # fmt: skip
        if rows and after.status != "deleted":
            conn.execute(insert(DV), rows)


def deployment_event(conn: Connection, ev: Event) -> None:
    name = str(getattr(ev.data, "name", ""))
    before = load_deployment(conn, name)
    try:
        after = apply(before, ev.data, ev.time)
    except InvalidTransition as e:
        raise Rejected(str(e)) from None
    _store(conn, before, after)
    conn.execute(
        insert(H).values(
            deployment=name, seq=after.version, time=ev.time, type=ev.type, actor=ev.actor,
            summary=json.dumps(ev.data.model_dump(mode="json", exclude={"name"}), sort_keys=True),
        )
    )  # fmt: skip


for _payload in d.DEPLOYMENT_PAYLOADS:
    handles(_payload)(deployment_event)
