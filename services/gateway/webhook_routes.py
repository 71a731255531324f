"""Webhooks over HTTP: create, list, show, change and delete them, and read their
delivery attempts, so an SDK in remote mode manages them as embedded mode does.

Commands answer once their `webhook.*` event is projected. The secret is in the
answer to creating a webhook and nowhere else. Deliveries are made by the
dispatcher where the log is (`ledgerflow webhooks run`, or `ledgerflow server`),
not by these routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.deps import ActorDep, BackendDep, FreshDep
from ledgerflow.services.gateway.schemas import (
    WebhookCreatedOut,
    WebhookDeliveryOut,
    WebhookIn,
    WebhookOut,
    WebhookPatch,
)
from ledgerflow.services.webhooks.service import WebhookService

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _service(backend: Backend) -> WebhookService:
    return backend.webhooks


@router.post(
    "",
    status_code=201,
    summary="Create a webhook; the answer is the only one that shows its secret",
)
def create_webhook(body: WebhookIn, backend: BackendDep, actor: ActorDep) -> WebhookCreatedOut:
    hook = _service(backend).create_webhook(
        body.name,
        body.url,
        body.events,
        body.secret,
        body.description,
        from_start=body.from_start,
        actor=actor,
    )
    return WebhookCreatedOut.model_validate(hook)


@router.get("", summary="List webhooks with where their deliveries stand (no secrets)")
def list_webhooks(backend: FreshDep) -> list[WebhookOut]:
    return [WebhookOut.model_validate(h) for h in _service(backend).list_webhooks()]


@router.get("/{name}", summary="Get a webhook (without its secret)")
def get_webhook(name: str, backend: FreshDep) -> WebhookOut:
    return WebhookOut.model_validate(_service(backend).get_webhook(name))


@router.patch("/{name}", summary="Change a webhook, pause or resume it, rotate its secret")
def update_webhook(
    name: str, body: WebhookPatch, backend: BackendDep, actor: ActorDep
) -> WebhookOut:
    hook = _service(backend).update_webhook(
        name,
        url=body.url,
        events=body.events,
        secret=body.secret,
        description=body.description,
        active=body.active,
        actor=actor,
    )
    return WebhookOut.model_validate(hook)


@router.delete("/{name}", status_code=204, summary="Delete a webhook and its pending deliveries")
def delete_webhook(name: str, backend: BackendDep, actor: ActorDep) -> None:
    _service(backend).delete_webhook(name, actor=actor)


@router.get("/{name}/deliveries", summary="A webhook's latest delivery attempts, newest first")
def list_webhook_deliveries(
    name: str,
    backend: FreshDep,
    max_results: Annotated[
        int, Query(ge=1, description="at most this many; 100 are kept per webhook")
    ] = 100,
) -> list[WebhookDeliveryOut]:
    got = _service(backend).list_deliveries(name, max_results)
    return [WebhookDeliveryOut.model_validate(d) for d in got]
