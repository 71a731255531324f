"""Webhooks over HTTP: create, list, show, change and delete them, and read their
delivery attempts, so an SDK in remote mode manages them as embedded mode does.

The commands' routes are made from their classes (`ledgerflow.events.webhook_commands`);
they answer once their `webhook.*` event is projected. The secret is in the answer to
creating a webhook and nowhere else. Deliveries are made by the dispatcher where the
log is (`ledgerflow webhooks run`, or `ledgerflow server`), not by these routes.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from ledgerflow.events.permissions import Level
from ledgerflow.events.webhook_commands import WebhookOut
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import checked, readable, requires
from ledgerflow.services.gateway.command_registry import WEBHOOKS
from ledgerflow.services.gateway.command_routes import command_router
from ledgerflow.services.gateway.deps import FreshDep, LiveDep, PrincipalDep
from ledgerflow.services.gateway.schemas import WebhookDeliveryOut
from ledgerflow.services.webhooks.service import WebhookService

reads = APIRouter(prefix="/webhooks", tags=["webhooks"])
_READ = requires("webhook", "name", Level.READ)


def _service(backend: Backend) -> WebhookService:
    return backend.webhooks


@reads.get(
    "",
    summary="List webhooks with where their deliveries stand (no secrets)",
    dependencies=[checked("any identity; only webhooks the caller may READ are listed")],
)
def list_webhooks(backend: FreshDep, principal: PrincipalDep) -> list[WebhookOut]:
    hooks = _service(backend).list_webhooks(readable=readable(backend, principal, "webhook"))
    return [WebhookOut.model_validate(h) for h in hooks]


@reads.get("/{name}", summary="Get a webhook (without its secret)", dependencies=[_READ])
def get_webhook(name: str, backend: FreshDep) -> WebhookOut:
    return WebhookOut.model_validate(_service(backend).get_webhook(name))


@reads.get(
    "/{name}/deliveries",
    summary="A webhook's latest delivery attempts, newest first",
    dependencies=[_READ],
)
def list_webhook_deliveries(
    name: str,
    backend: LiveDep,
    max_results: Annotated[
        int, Query(ge=1, description="at most this many; 100 are kept per webhook")
    ] = 100,
) -> list[WebhookDeliveryOut]:
    got = _service(backend).list_deliveries(name, max_results)
    return [WebhookDeliveryOut.model_validate(d) for d in got]


router = APIRouter()
router.include_router(command_router(WEBHOOKS))
router.include_router(reads)
