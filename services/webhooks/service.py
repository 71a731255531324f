"""Webhook commands (`ledgerflow.events.webhook_commands`): decide, append `webhook.*`
events, wait until projected.

A webhook created now starts at the head of the log: the head is read before the
`webhook.created` event is appended and travels in it, so where deliveries begin
does not depend on when a dispatcher first notices the webhook.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Sequence

from ledgerflow.events import webhook_commands as wc
from ledgerflow.events import webhook_payloads as w
from ledgerflow.events.codec import REGISTRY
from ledgerflow.events.commands import R
from ledgerflow.events.envelope import uuid7
from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.log import EventLog
from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
from ledgerflow.services.commands import Committer, Handlers
from ledgerflow.services.projector.readable import Readable
from ledgerflow.services.secret_box import Sealed, SecretBox
from ledgerflow.services.webhooks import checkpoint
from ledgerflow.services.webhooks.decide import decide_create, decide_update
from ledgerflow.services.webhooks.queries import WebhookQueries


def new_secret() -> str:
    return secrets.token_urlsafe(32)


class WebhookService:
    def __init__(
        self,
        committer: Committer,
        queries: WebhookQueries,
        log: EventLog,
        secrets: Callable[[], SecretBox],
        known_types: Callable[[], Sequence[str]] = REGISTRY.types,
    ) -> None:
        """`secrets` gives the server's key (asked only when a secret is sealed, so a
        server without one still lists and deletes webhooks)."""
        self._committer = committer
        self._secrets = secrets
        self.queries = queries
        self._log = log
        self._known_types = known_types

    handlers = Handlers["WebhookService"]()

    def execute(self, command: wc.WebhookCommand[R], *, actor: str) -> R:
        """Decide on `command` and commit its event."""
        return self.handlers.run(self, command, actor)

    @handlers.on(wc.CreateWebhook)
    def _create(self, c: wc.CreateWebhook, actor: str) -> Webhook:
        """Register a webhook. The answer is the only one that ever shows its secret."""
        secret = new_secret() if c.secret is None else c.secret
        created = decide_create(
            webhook_id=uuid7(),
            name=c.name,
            url=c.url,
            events=c.events,
            secret=secret,
            seal=self._seal,
            description=c.description,
            deliver_after=None if c.from_start else checkpoint.head(self._log),
            known_types=self._known_types(),
            taken_names=self.queries.names(),
        )
        self._committer.commit([created], actor)
        return dataclasses.replace(self.queries.get(created.name), secret=secret)

    @handlers.on(wc.UpdateWebhook)
    def _update(self, c: wc.UpdateWebhook, actor: str) -> Webhook:
        """Change what is given; deliveries continue from the same cursor (a paused
        webhook, once active again, receives everything it missed)."""
        update = decide_update(
            self.queries.get(c.name),
            url=c.url,
            events=c.events,
            secret=c.secret,
            description=c.description,
            active=c.active,
            known_types=self._known_types(),
            seal=self._seal,
        )
        if update is not None:
            self._committer.commit([update], actor)
        return self.queries.get(c.name)

    def _seal(self, secret: str) -> Sealed:
        return self._secrets().seal(secret)

    @handlers.on(wc.DeleteWebhook)
    def _delete(self, c: wc.DeleteWebhook, actor: str) -> None:
        self._committer.commit([w.WebhookDeleted(id=self.queries.get(c.name).id)], actor)

    def list_webhooks(self, *, readable: Readable | None = None) -> list[Webhook]:
        """The webhooks; with `readable`, those a reader may see."""
        return self.queries.list_webhooks(readable)

    def get_webhook(self, name: str) -> Webhook:
        return self.queries.get(name)

    def list_deliveries(self, name: str, limit: int = 100) -> list[WebhookDelivery]:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"max_results must be a positive number, got {limit!r}")
        return self.queries.deliveries(name, limit)
