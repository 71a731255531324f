"""How `bundle.*` events change the bundles view.

A bundle ends once: `bundle.built` or `bundle.failed` applies only to a bundle
still `requested`; a second ending (a retried worker, say) is rejected and
dead-lettered rather than overwriting the first.
"""

from __future__ import annotations

import json

from sqlalchemy import Connection, insert, select, update

from ledgerflow.events import bundle_payloads as b
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.bundle_tables import BUNDLES as B
from ledgerflow.services.projector.handlers import Rejected, _data, handles


def _pending(conn: Connection, bundle_id: str) -> None:
    row = conn.execute(select(B.c.status).where(B.c.id == bundle_id)).first()
    if row is None:
        raise Rejected(f"bundle {bundle_id} was never requested")
    if row.status != "requested":
        raise Rejected(f"bundle {bundle_id} has already ended ({row.status})")


@handles(b.BundleRequested)
def bundle_requested(conn: Connection, ev: Event) -> None:
    d = _data(ev, b.BundleRequested)
    if conn.execute(select(B.c.id).where(B.c.id == d.id)).first():
        raise Rejected(f"bundle {d.id} already exists")
    conn.execute(
        insert(B).values(
            id=d.id, name=d.name, version=d.version, target=d.target, status="requested",
            source=d.source, trigger=d.trigger, creation_time=ev.time, last_updated_time=ev.time,
        )
    )  # fmt: skip


@handles(b.BundleBuilt)
def bundle_built(conn: Connection, ev: Event) -> None:
    d = _data(ev, b.BundleBuilt)
    _pending(conn, d.id)
    conn.execute(
        update(B).where(B.c.id == d.id).values(
            status="built", artifact_uri=d.artifact_uri, runtime=d.runtime,
            size_bytes=d.size_bytes, max_abs_diff=d.max_abs_diff,
            manifest=json.dumps(d.manifest, sort_keys=True), last_updated_time=ev.time,
        )
    )  # fmt: skip


@handles(b.BundleFailed)
def bundle_failed(conn: Connection, ev: Event) -> None:
    d = _data(ev, b.BundleFailed)
    _pending(conn, d.id)
    conn.execute(
        update(B)
        .where(B.c.id == d.id)
        .values(status="failed", reason=d.reason, last_updated_time=ev.time)
    )
