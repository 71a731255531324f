"""Webhooks over the gateway, offering what the embedded `WebhookService` offers, so the
Client manages them the same way in both modes: commands travel as their typed models
(`RemoteCommands.execute`), reads as GETs.

The gateway decides with the same functions as embedded mode, so a bad name, URL,
pattern or secret is refused with the same message and the field named; a taken
name is `AlreadyExists`, a missing one `NotFound`. Only the answer to creating a
webhook carries its secret. Deliveries are made where the log is, by the
dispatcher (`ledgerflow webhooks run` or `ledgerflow server`).
"""

from __future__ import annotations

from typing import Any

from ledgerflow.events.errors import InvalidInput
from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery
from ledgerflow.remote.channel import seg
from ledgerflow.remote.commands import RemoteCommands

HOOKS = "/webhooks"


def _hook(doc: Any) -> Webhook:
    from ledgerflow.events.webhook_commands import WebhookOut

    return WebhookOut.model_validate(doc).entity()


class RemoteWebhooks(RemoteCommands):
    """Webhook commands (`execute`) and reads over the gateway."""

    def _path(self, name: str) -> str:
        return f"{HOOKS}/{seg(name)}"

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
