"""Typed payloads for webhooks, an event-sourced aggregate. Stream: `webhook:<id>`.

The secret travels in `webhook.created` (and in `webhook.updated` when it is
rotated), because the dispatcher that signs deliveries folds its configuration
from these events like every other view. Whoever can read the log can read the
secrets; docs/webhooks.md says so.
"""

from __future__ import annotations

from pydantic import Field

from ledgerflow.events.payloads import Payload


class _WebhookPayload(Payload):
    id: str = Field(min_length=1)

    def stream(self) -> str:
        return f"webhook:{self.id}"


class WebhookCreated(_WebhookPayload):
    TYPE = "webhook.created"
    name: str = Field(min_length=1)
    url: str = Field(min_length=1)
    events: tuple[str, ...] = Field(min_length=1)
    """Glob patterns of event types to deliver, e.g. `model.*`."""
    secret: str = Field(min_length=1)
    description: str = ""
    deliver_after: str | None = None
    """Log checkpoint (opaque text) the first delivery comes after: the head of the log
    when the webhook was created, or None to deliver from the first event on the log."""


class WebhookUpdated(_WebhookPayload):
    """Only the fields that are set change; None leaves a field as it was."""

    TYPE = "webhook.updated"
    url: str | None = None
    events: tuple[str, ...] | None = None
    secret: str | None = None
    description: str | None = None
    active: bool | None = None


class WebhookDeleted(_WebhookPayload):
    TYPE = "webhook.deleted"


WEBHOOK_PAYLOADS: tuple[type[Payload], ...] = (WebhookCreated, WebhookUpdated, WebhookDeleted)
