"""Webhook records the services build and the SDK returns.

`Webhook.secret` is filled only in the answer to `create_webhook`: listings and
lookups never show it again, so a secret does not leak into logs and terminals
that print webhooks.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    name: str
    url: str
    events: list[str]
    description: str
    active: bool
    creation_time: int
    last_updated_time: int
    secret: str | None = None
    cursor: str | None = None
    """Log checkpoint that deliveries resume after (None: from the first event on the log)."""
    failed_attempts: int = 0
    """Failed attempts at the event now at the head of this webhook's queue."""
    next_attempt_time: int | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One attempt to deliver one event to one webhook."""

    delivery_id: str
    event_id: str
    event_type: str
    position: str
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int
    time: int
