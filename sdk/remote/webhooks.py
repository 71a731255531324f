"""Webhooks over the gateway, with the embedded `WebhookService`'s signatures, so the
Client manages them the same way in both modes.

The gateway decides with the same functions as embedded mode, so a bad name, URL,
pattern or secret is refused with the same message and the field named; a taken
name is `AlreadyExists`, a missing one `NotFound`. Only the answer to creating a
webhook carries its secret. Deliveries are made where the log is, by the
dispatcher (`ledgerflow webhooks run` or `ledgerflow server`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
from ledgerflow.remote.channel import Channel, seg

HOOKS = "/webhooks"


def _patterns(events: object) -> object:
    """A single pattern as a list of one, as embedded mode takes it; anything else that
    is not a list goes as it is, for the gateway to refuse naming `events`."""
    if isinstance(events, str):
        return [events]
    if isinstance(events, Iterable) and not isinstance(events, (bytes, dict)):
        return list(events)
    return events


def _hook(doc: Any) -> Webhook:
    from ledgerflow.services.gateway.schemas import WebhookCreatedOut, WebhookOut

    model = WebhookCreatedOut if isinstance(doc, dict) and "secret" in doc else WebhookOut
    return model.model_validate(doc).entity()


class RemoteWebhooks:
    def __init__(self, channel: Channel) -> None:
        self._ch = channel

    def _path(self, name: str) -> str:
        return f"{HOOKS}/{seg(name)}"

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        description: str | None = None,
        *,
        from_start: bool = False,
        actor: str,
    ) -> Webhook:
        """Register a webhook. The answer is the only one that ever shows its secret."""
        body = {
            "name": name,
            "url": url,
            "events": _patterns([] if events is None else events),
            "secret": secret,
            "description": description,
            "from_start": from_start,
        }
        return _hook(self._ch.call("POST", HOOKS, actor=actor, json=body))

    def update_webhook(
        self,
        name: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        description: str | None = None,
        active: bool | None = None,
        actor: str,
    ) -> Webhook:
        """Change what is given; deliveries continue from the same cursor."""
        given = {
            "url": url,
            "events": None if events is None else _patterns(events),
            "secret": secret,
            "description": description,
            "active": active,
        }
        body = {k: v for k, v in given.items() if v is not None}
        doc = self._ch.call("PATCH", self._path(name), actor=actor, json=body, idempotent=True)
        return _hook(doc)

    def delete_webhook(self, name: str, *, actor: str) -> None:
        self._ch.call("DELETE", self._path(name), actor=actor)

    def list_webhooks(self) -> list[Webhook]:
        return [_hook(d) for d in self._ch.call("GET", HOOKS)]

    def get_webhook(self, name: str) -> Webhook:
        return _hook(self._ch.call("GET", self._path(name)))

    def list_deliveries(self, name: str, limit: int = 100) -> list[WebhookDelivery]:
        from ledgerflow.services.gateway.schemas import WebhookDeliveryOut

        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(
                f"max_results must be a positive number, got {limit!r}", field="max_results"
            )
        docs = self._ch.call("GET", f"{self._path(name)}/deliveries", params={"max_results": limit})
        return [WebhookDeliveryOut.model_validate(d).entity() for d in docs]
