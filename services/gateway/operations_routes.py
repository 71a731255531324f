"""`GET /api/v1/operations`: the pipeline's state at a glance, for operators (admins)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from ledgerflow.events.commands import ADMIN
from ledgerflow.events.wire import Out
from ledgerflow.services import operations
from ledgerflow.services.gateway.auth import Requires
from ledgerflow.services.gateway.deps import LiveDep

router = APIRouter(tags=["operations"])


@router.get(
    "/operations",
    summary="Projector lag per partition, dead letters, webhook backlog, jobs, deployments, "
    "model servers",
    dependencies=[Depends(Requires(ADMIN))],
)
def get_operations(backend: LiveDep, request: Request) -> operations.Operations:
    return operations.summary(backend, getattr(request.app.state, "deployment_host", None))


class RouteRequests(Out):
    route: str = Field(description="the route template, e.g. /api/v1/runs/{run_id}")
    method: str
    status: str
    count: int = Field(description="requests answered since this gateway started")


class RequestCounts(Out):
    time: int = Field(
        description="epoch ms these counts were read; rates are differences between two reads"
    )
    requests: list[RouteRequests]


@router.get(
    "/operations/requests",
    summary="This gateway's requests so far by route, method and status (its Prometheus counter)",
    dependencies=[Depends(Requires(ADMIN))],
)
def get_request_counts(request: Request) -> RequestCounts:
    metrics = request.app.state.gateway_metrics
    return RequestCounts(
        time=int(time.time() * 1000),
        requests=[
            RouteRequests(route=r, method=m, status=s, count=n)
            for r, m, s, n in metrics.request_counts()
        ],
    )
