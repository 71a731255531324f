"""How `webhook.*` events change the webhooks view.

Names are unique: of two creations racing for one name, the first in log order
wins and the second is rejected (dead-lettered, and reported to its caller as
AlreadyExists by the Committer).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.envelope import Event
from ledgerflow.services.projector.handlers import Rejected, _data, handles
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W


def _exists(conn: Connection, webhook_id: str) -> None:
    if conn.execute(select(W.c.id).where(W.c.id == webhook_id)).first() is None:
        raise Rejected(f"webhook {webhook_id} does not exist")


@handles(w.WebhookCreated)
def webhook_created(conn: Connection, ev: Event) -> None:
    d = _data(ev, w.WebhookCreated)
    if conn.execute(select(W.c.id).where(W.c.name == d.name)).first():
        raise Rejected(f"webhook {d.name!r} already exists")
    if conn.execute(select(W.c.id).where(W.c.id == d.id)).first():
        raise Rejected(f"webhook id {d.id} already exists")
    conn.execute(
        insert(W).values(
            id=d.id, name=d.name, url=d.url, events=json.dumps(list(d.events)),
            secret=d.secret or "", sealed_secret=d.sealed_secret, secret_key_id=d.secret_key_id,
            description=d.description, active=True, deliver_after=d.deliver_after,
            creation_time=ev.time, last_updated_time=ev.time,
        )
    )  # fmt: skip


@handles(w.WebhookUpdated)
def webhook_updated(conn: Connection, ev: Event) -> None:
    d = _data(ev, w.WebhookUpdated)
    _exists(conn, d.id)
    changes: dict[str, Any] = {"last_updated_time": ev.time}
    for field in ("url", "description", "active"):
        value = getattr(d, field)
        if value is not None:
            changes[field] = value
    if d.sealed_secret is not None or d.secret is not None:
        changes.update(
            secret=d.secret or "", sealed_secret=d.sealed_secret, secret_key_id=d.secret_key_id
        )
    if d.events is not None:
        changes["events"] = json.dumps(list(d.events))
    conn.execute(update(W).where(W.c.id == d.id).values(**changes))


@handles(w.WebhookDeleted)
def webhook_deleted(conn: Connection, ev: Event) -> None:
    d = _data(ev, w.WebhookDeleted)
    _exists(conn, d.id)
    conn.execute(delete(W).where(W.c.id == d.id))
