"""Webhook methods of `lf.Client`: deliver matching events, signed, to an HTTP endpoint.

Each write builds its typed command (`ledgerflow.events.webhook_commands`) and executes
it: embedded, on the `WebhookService` next to the log; against a gateway URL, over its
`/api/v1/webhooks` routes, with the same answers and the same errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from ledgerflow._client_methods import ClientMethods

if TYPE_CHECKING:
    from ledgerflow._ports import WebhooksPort
    from ledgerflow.events.webhook_entities import Webhook, WebhookDelivery


class WebhookMethods(ClientMethods):
    """Mixed into Client, which provides the backend and the actor."""

    def _webhooks(self, *, refresh: bool = False) -> WebhooksPort:
        """Where webhooks are managed: the embedded service next to the log, or the
        gateway's webhook routes in remote mode; with `refresh`, after the views caught up."""
        backend = self._backend
        if refresh:
            backend.refresh()
        return backend.webhooks

    def create_webhook(
        self,
        name: str,
        url: str,
        events: Sequence[str],
        secret: str | None = None,
        description: str | None = None,
        *,
        from_start: bool = False,
    ) -> Webhook:
        """Deliver events whose type matches `events` (globs like `model.*`) to `url`,
        signed with `secret` (generated when not given). The returned Webhook is the only
        answer that shows the secret. Deliveries start with events appended from now on,
        or with the first event on the log if `from_start`; the dispatcher where the log
        is (`ledgerflow webhooks run`, or `ledgerflow server`) makes them. Works the same
        against a gateway URL."""
        from ledgerflow.events import webhook_commands as wc

        command = wc.CreateWebhook(
            name=name, url=url, events=_patterns([] if events is None else events),
            secret=secret, description=description, from_start=from_start,
        )  # fmt: skip
        return self._webhooks().execute(command, actor=self._actor)

    def list_webhooks(self) -> list[Webhook]:
        return self._webhooks(refresh=True).list_webhooks()

    def get_webhook(self, name: str) -> Webhook:
        return self._webhooks(refresh=True).get_webhook(name)

    def update_webhook(
        self,
        name: str,
        *,
        url: str | None = None,
        events: Sequence[str] | None = None,
        secret: str | None = None,
        description: str | None = None,
        active: bool | None = None,
    ) -> Webhook:
        """Change what is given. `active=False` pauses deliveries; made active again, the
        webhook receives everything it missed, in order."""
        from ledgerflow.events import webhook_commands as wc

        command = wc.UpdateWebhook(
            name=name, url=url, events=None if events is None else _patterns(events),
            secret=secret, description=description, active=active,
        )  # fmt: skip
        return self._webhooks().execute(command, actor=self._actor)

    def delete_webhook(self, name: str) -> None:
        from ledgerflow.events import webhook_commands as wc

        self._webhooks().execute(wc.DeleteWebhook(name=name), actor=self._actor)

    def list_webhook_deliveries(self, name: str, max_results: int = 100) -> list[WebhookDelivery]:
        """The latest delivery attempts to a webhook, newest first."""
        return self._webhooks(refresh=True).list_deliveries(name, max_results)


def _patterns(events: Any) -> Any:
    """A single event type pattern as a list of one; any other iterable as a list; anything
    else as it is, for the command to refuse naming `events`."""
    if isinstance(events, str):
        return [events]
    if isinstance(events, Iterable) and not isinstance(events, (bytes, dict)):
        return list(events)
    return events
