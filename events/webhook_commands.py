"""Webhook commands (see `ledgerflow.events.commands`), each with the REST route that
carries it, and the webhook as it travels in their answers.

Names, URLs, patterns and secrets travel as given and are checked by the webhook
decide functions, so a mistake is refused with the same message and field in every
mode. Only the answer to creating a webhook shows its secret.
"""

from __future__ import annotations

from typing import Any, Generic

from pydantic import Field, StrictBool, computed_field

from ledgerflow.events.commands import ANYONE, Answer, Command, Http, R, on
from ledgerflow.events.field_schemas import Slug, Url
from ledgerflow.events.permissions import Level
from ledgerflow.events.webhook_entities import Webhook
from ledgerflow.events.webhook_keys import standard_secret
from ledgerflow.events.wire import RecordOut, from_record

_ROOT = "/webhooks"
_ONE = _ROOT + "/{name}"


@from_record(
    Webhook,
    exclude={"secret"},
    descriptions={
        "cursor": "the log token deliveries resume after",
        "failed_attempts": "failed attempts at the event now due",
    },
    defaults=True,
)
class WebhookOut(RecordOut[Webhook]):
    """A webhook without its secret: only the answer to creating it shows that."""


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(description="shown this once: store it where the receiver can read it")

    @computed_field(  # type: ignore[prop-decorator]
        description="the same secret as Standard Webhooks libraries take it (whsec_...)"
    )
    @property
    def standard_secret(self) -> str:
        return standard_secret(self.secret)


def _created(hook: Webhook) -> WebhookCreatedOut:
    return WebhookCreatedOut.model_validate(hook)


def _read_created(doc: Any) -> Webhook:
    return WebhookCreatedOut.model_validate(doc).entity()


def _shown(hook: Webhook) -> WebhookOut:
    return WebhookOut.model_validate(hook)


def _read_shown(doc: Any) -> Webhook:
    return WebhookOut.model_validate(doc).entity()


CREATED: Answer[Webhook] = Answer(_created, _read_created, WebhookCreatedOut)
SHOWN: Answer[Webhook] = Answer(_shown, _read_shown, WebhookOut)


class WebhookCommand(Command[R], Generic[R]):
    """A command on one webhook, named by its unique name."""

    name: str


class CreateWebhook(WebhookCommand[Webhook]):
    HTTP = Http(
        "POST", _ROOT, "Create a webhook; the answer is the only one that shows its secret", 201
    )
    NEEDS = ANYONE
    ANSWER = CREATED
    name: Slug = Field(description="unique; letters, digits, '_', '-' and '.'")
    url: Url = Field(description="the http(s) endpoint events are POSTed to")
    events: list[str] = Field(description="event type globs, e.g. model.* or run.finished")
    secret: str | None = Field(None, description="16-256 characters; generated when absent")
    description: str | None = None
    from_start: StrictBool = Field(
        False, description="deliver the events already on the log too, from the first one"
    )


class UpdateWebhook(WebhookCommand[Webhook]):
    """Only the fields given change; deliveries go on from the same place in the log."""

    HTTP = Http(
        "PATCH", _ONE, "Change a webhook, pause or resume it, rotate its secret", idempotent=True
    )
    NEEDS = on("webhook", "name", Level.EDIT)
    ANSWER = SHOWN
    url: Url | None = None
    events: list[str] | None = None
    secret: str | None = Field(None, description="a new secret (rotation); never shown again")
    description: str | None = None
    active: StrictBool | None = Field(None, description="false pauses deliveries, true resumes")


class DeleteWebhook(WebhookCommand[None]):
    HTTP = Http("DELETE", _ONE, "Delete a webhook and its pending deliveries", 204)
    NEEDS = on("webhook", "name", Level.MANAGE)


WEBHOOK_COMMANDS: tuple[type[WebhookCommand[Any]], ...] = (
    CreateWebhook,
    UpdateWebhook,
    DeleteWebhook,
)
