"""The model server's ASGI app, built around a ModelRepository it is given.

`create_app(repository, extra_routes=...)` lets another module (a deployment's router) add its
own routes, e.g. `POST /deployments/{name}/invocations`, that call `repository.infer(...)`.
Starlette without FastAPI: no pydantic models on the hot path.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from ledgerflow.services.metrics import exposition
from ledgerflow.services.serving.auth import ServingAuth
from ledgerflow.services.serving.http import server_version
from ledgerflow.services.serving.oip_routes import oip_routes
from ledgerflow.services.serving.repository import ModelRepository
from ledgerflow.services.serving.scoring_routes import scoring_routes
from ledgerflow.services.serving.tfserving_routes import tfserving_routes


def create_app(
    repository: ModelRepository,
    *,
    extra_routes: Sequence[BaseRoute] = (),
    on_startup: Callable[[], Coroutine[Any, Any, None]] | None = None,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    auth: ServingAuth | None = None,
) -> Starlette:
    """The REST app: MLflow scoring, OIP v2, TF Serving's REST API and /metrics over
    `repository`. `on_startup` runs in the background once the server listens (loading and
    warming models), so readiness probes get 503 until it is done rather than no answer.
    With `auth` requiring it, inference and model metadata need an identity
    (`ledgerflow.services.serving.auth`)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task: asyncio.Task[None] | None = (
            asyncio.create_task(on_startup()) if on_startup is not None else None
        )
        app.state.startup = task
        try:
            yield
        finally:
            if task is not None and not task.done():
                task.cancel()
            if on_shutdown is not None:
                await on_shutdown()
            await repository.close()

    routes: list[BaseRoute] = [
        *scoring_routes(repository, auth),
        *oip_routes(repository, server_version(), auth),
        *tfserving_routes(repository, auth),
        Route("/metrics", exposition.endpoint(repository.metrics.registry), methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes, lifespan=lifespan)
