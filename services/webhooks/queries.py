"""The read side of webhooks: the configuration view joined with delivery progress."""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Connection, Engine, RowMapping, select, true

from ledgerflow.events.errors import NotFound
from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
from ledgerflow.services.projector.database import retry
from ledgerflow.services.projector.readable import Readable
from ledgerflow.services.projector.webhook_tables import WEBHOOKS as W
from ledgerflow.services.secret_box import Sealed, SecretBox
from ledgerflow.services.webhooks.store import CURSORS as C
from ledgerflow.services.webhooks.store import ensure_tables, read_deliveries


@dataclass(frozen=True, slots=True)
class HookConfig:
    """What the dispatcher needs to deliver to one webhook (its secret still sealed)."""

    id: str
    name: str
    url: str
    events: tuple[str, ...]
    sealed: Sealed | None
    plain_secret: str
    """Only for a webhook whose events predate sealing (else '')."""
    deliver_after: str | None

    def signing_secret(self, box: SecretBox) -> str:
        """The secret deliveries are signed with; Unavailable naming the key if `box`
        lacks the key that sealed it."""
        if self.sealed is None:
            return self.plain_secret
        return box.open(self.sealed, what=f"webhook {self.name!r}")


class WebhookQueries:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _select(self, conn: Connection, where: ColumnElement[bool]) -> list[RowMapping]:
        stmt = (
            select(W, C.c.position, C.c.attempts, C.c.next_attempt_time, C.c.last_error)
            .select_from(W.outerjoin(C, C.c.webhook_id == W.c.id))
            .where(where)
            .order_by(W.c.name)
        )
        return list(conn.execute(stmt).mappings().all())

    def _read(self, where: ColumnElement[bool]) -> list[RowMapping]:
        ensure_tables(self.engine)

        def run() -> list[RowMapping]:
            with self.engine.connect() as conn:
                return self._select(conn, where)

        return retry(run, "reading webhooks")

    def list_webhooks(self, readable: Readable | None = None) -> list[Webhook]:
        where = true() if readable is None else readable.where(W.c.name)
        return [_webhook(r) for r in self._read(where)]

    def find(self, name: str) -> Webhook | None:
        rows = self._read(W.c.name == name)
        return _webhook(rows[0]) if rows else None

    def get(self, name: str) -> Webhook:
        found = self.find(name)
        if found is None:
            raise NotFound(
                f"no webhook named {name!r}; see `ledgerflow webhooks list`",
                kind="webhook",
                key=name,
            )
        return found

    def names(self) -> set[str]:
        return {r["name"] for r in self._read(true())}

    def configs(self) -> list[HookConfig]:
        """The active webhooks, for the dispatcher; paused ones keep their cursor meanwhile."""
        return [
            HookConfig(
                r["id"], r["name"], r["url"], tuple(json.loads(r["events"])),
                None if r["sealed_secret"] is None
                else Sealed(r["sealed_secret"], r["secret_key_id"]),
                r["secret"], r["deliver_after"],
            )
            for r in self._read(true())
            if r["active"]
        ]  # fmt: skip

    def orphan_cursors(self) -> set[str]:
        """Ids of webhooks that have a cursor but no longer exist (they were deleted)."""
        ensure_tables(self.engine)

        def run() -> set[str]:
            with self.engine.connect() as conn:
                stmt = (
                    select(C.c.webhook_id)
                    .select_from(C.outerjoin(W, W.c.id == C.c.webhook_id))
                    .where(W.c.id.is_(None))
                )
                return set(conn.execute(stmt).scalars())

        return retry(run, "reading webhook cursors")

    def deliveries(self, name: str, limit: int = 100) -> list[WebhookDelivery]:
        """The most recent delivery attempts of a webhook, newest first."""
        hook = self.get(name)

        def run() -> list[WebhookDelivery]:
            with self.engine.connect() as conn:
                return read_deliveries(conn, hook.id, limit)

        return retry(run, "reading webhook deliveries")


def _webhook(r: RowMapping) -> Webhook:
    return Webhook(
        id=r["id"], name=r["name"], url=r["url"], events=list(json.loads(r["events"])),
        description=r["description"], active=bool(r["active"]),
        creation_time=r["creation_time"], last_updated_time=r["last_updated_time"],
        # No cursor row yet: the dispatcher has not picked the webhook up, and will start
        # after `deliver_after`.
        cursor=r["position"] if r["attempts"] is not None else r["deliver_after"],
        failed_attempts=r["attempts"] or 0,
        next_attempt_time=r["next_attempt_time"], last_error=r["last_error"],
    )  # fmt: skip
