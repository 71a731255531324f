"""All of MLflow's REST API the gateway serves, as one router (`create_app` includes it)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import PlainTextResponse

from ledgerflow.services.gateway.auth import checked
from ledgerflow.services.gateway.mlflow_api import (
    artifacts,
    experiments,
    inputs,
    logged_models,
    metrics,
    registry,
    runs,
    server_info,
)
from ledgerflow.services.gateway.mlflow_api.endpoints import NotImplementedHere, error_response
from ledgerflow.services.gateway.route_table import FixedPaths, Gated

MLFLOW_API_VERSION = "3.3.0"
"""What `/version` answers: the MLflow release whose REST API this one follows. Below 3.4,
so MLflow's client does not send trace spans (OTLP), which Ledgerflow does not store."""

FAMILIES = (
    experiments.api,
    runs.api,
    inputs.api,
    metrics.api,
    registry.api,
    logged_models.api,
)


def install(app: FastAPI) -> None:
    """MLflow's REST API on `app`: its fixed paths in one table ahead of every route (a
    dict lookup, not FastAPI's route matching), the rest as routes."""
    fixed = FixedPaths()
    app.include_router(router(fixed))
    app.router.routes.insert(0, fixed)


def router(fixed: FixedPaths) -> APIRouter:
    """The routes of MLflow's API that are not at fixed paths (those go into `fixed`), and
    the answers to what it does not serve."""
    made = Gated((*UNSERVED, "/version"))
    for family in FAMILIES:
        made.include_router(family.serve_on(fixed))
    v3 = ("/api/3.0/mlflow", "/ajax-api/3.0/mlflow")
    made.include_router(server_info.api.serve_on(fixed, v3))
    made.include_router(artifacts.router(fixed))
    for prefix in UNSERVED:  # last: only what no route above takes
        made.add_api_route(
            prefix + "/{rest:path}",
            _unserved,
            methods=["GET", "POST", "PATCH", "PUT", "DELETE"],
            include_in_schema=False,
            dependencies=[checked("any identity")],
        )
    made.add_api_route(
        "/version",
        _version,
        methods=["GET"],
        include_in_schema=False,
        response_class=PlainTextResponse,
    )
    return made


UNSERVED = (
    "/api/2.0/mlflow",
    "/ajax-api/2.0/mlflow",
    "/api/3.0/mlflow",
    "/ajax-api/3.0/mlflow",
    "/api/2.0/mlflow-artifacts",
    "/ajax-api/2.0/mlflow-artifacts",
)


def _unserved(request: Request, rest: str) -> Response:
    """The rest of MLflow's API (traces, prompts, datasets search, gateway, scorers...):
    501 NOT_IMPLEMENTED naming the call, which MLflow's client reports as such."""
    del rest
    what = f"{request.method} {request.url.path}"
    return error_response(
        NotImplementedHere(
            f"Ledgerflow does not serve MLflow's {what}; see docs/mlflow-compat.md for what "
            "it serves"
        )
    )


def _version() -> PlainTextResponse:
    return PlainTextResponse(MLFLOW_API_VERSION)
