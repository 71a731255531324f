"""What route handlers share: the backend behind the app and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from ledgerflow.services.bootstrap import Backend

ACTOR_HEADER = "X-Ledgerflow-Actor"


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def _fresh_backend(request: Request) -> Backend:
    """The backend with its views first brought up to the head of the log, so a read sees
    events ingested without waiting (or appended by another process)."""
    backend = _backend(request)
    backend.refresh()
    return backend


def _actor(
    actor: Annotated[
        str | None,
        Header(
            alias=ACTOR_HEADER,
            description="who is acting, recorded on the events (e.g. user:alice)",
        ),
    ] = None,
) -> str:
    return actor or "anonymous"


BackendDep = Annotated[Backend, Depends(_backend)]
"""For commands: they read what they need and wait for their own events."""
FreshDep = Annotated[Backend, Depends(_fresh_backend)]
"""For reads."""
ActorDep = Annotated[str, Depends(_actor)]
