"""Typed payloads for webhooks, an event-sourced aggregate. Stream: `webhook:<id>`.

The signing secret travels in `webhook.created` (and in `webhook.updated` when it is
rotated) sealed with the server's key: `sealed_secret` is the ciphertext and
`secret_key_id` names the key, so the dispatcher, which folds its configuration from
these events like every other view, can open it and nobody reading the log can.
Events written before that carry the secret in plain text in `secret`; they still
fold (an immutable log cannot forget them; docs/security.md says what to do).
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

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
    sealed_secret: str | None = Field(None, min_length=1)
    secret_key_id: str | None = Field(None, min_length=1)
    secret: str | None = Field(None, min_length=1)
    """Plain text, only in events written before secrets were sealed."""
    description: str = ""
    deliver_after: str | None = None
    """Log checkpoint (opaque text) the first delivery comes after: the head of the log
    when the webhook was created, or None to deliver from the first event on the log."""

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        _check_secret(self, required=True)
        return self


class WebhookUpdated(_WebhookPayload):
    """Only the fields that are set change; None leaves a field as it was."""

    TYPE = "webhook.updated"
    url: str | None = None
    events: tuple[str, ...] | None = None
    sealed_secret: str | None = Field(None, min_length=1)
    secret_key_id: str | None = Field(None, min_length=1)
    secret: str | None = Field(None, min_length=1)
    """Plain text, only in events written before secrets were sealed."""
    description: str | None = None
    active: bool | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> Self:
        _check_secret(self, required=False)
        return self


class WebhookDeleted(_WebhookPayload):
    TYPE = "webhook.deleted"


def _check_secret(payload: WebhookCreated | WebhookUpdated, *, required: bool) -> None:
    sealed = payload.sealed_secret is not None
    if sealed != (payload.secret_key_id is not None):
        raise ValueError("sealed_secret and secret_key_id come together")
    if sealed and payload.secret is not None:
        raise ValueError("a webhook secret is either sealed or (in old events) plain, not both")
    if required and not sealed and payload.secret is None:
        raise ValueError("a new webhook needs its sealed_secret and secret_key_id")


WEBHOOK_PAYLOADS: tuple[type[Payload], ...] = (WebhookCreated, WebhookUpdated, WebhookDeleted)
