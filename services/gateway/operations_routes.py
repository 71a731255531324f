"""`GET /api/v1/operations`: the pipeline's state at a glance, for operators (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from ledgerflow.events.commands import ADMIN
from ledgerflow.services import operations
from ledgerflow.services.gateway.auth import Requires
from ledgerflow.services.gateway.deps import LiveDep

router = APIRouter(tags=["operations"])


@router.get(
    "/operations",
    summary="Projector lag per partition, dead letters, webhook backlog, jobs, deployments",
    dependencies=[Depends(Requires(ADMIN))],
)
def get_operations(backend: LiveDep) -> operations.Operations:
    return operations.summary(backend)
