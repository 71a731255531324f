"""All of MLflow's REST API the gateway serves, as one router (`create_app` includes it)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from ledgerflow.services.gateway.mlflow_api import (
    artifacts,
    experiments,
    logged_models,
    metrics,
    runs,
    server_info,
)

MLFLOW_API_VERSION = "3.3.0"
"""What `/version` answers: the MLflow release whose REST API this one follows. Below 3.4,
so MLflow's client does not send trace spans (OTLP), which Ledgerflow does not store."""

FAMILIES = (experiments.api, runs.api, metrics.api, logged_models.api)


def router() -> APIRouter:
    made = APIRouter()
    for family in FAMILIES:
        made.include_router(family.router())
    made.include_router(server_info.api.router(("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")))
    made.include_router(artifacts.router())
    made.add_api_route(
        "/version",
        _version,
        methods=["GET"],
        include_in_schema=False,
        response_class=PlainTextResponse,
    )
    return made


def _version() -> PlainTextResponse:
    return PlainTextResponse(MLFLOW_API_VERSION)
