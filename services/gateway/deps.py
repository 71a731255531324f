"""What route handlers share: the backend behind the app and who is calling."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import ACTOR_HEADER, ActorDep, PrincipalDep

__all__ = ["ACTOR_HEADER", "ActorDep", "BackendDep", "FreshDep", "PrincipalDep"]


def _backend(request: Request) -> Backend:
    backend: Backend = request.app.state.backend
    return backend


def _fresh_backend(request: Request) -> Backend:
    """The backend with its views first brought up to the head of the log, so a read sees
    events ingested without waiting (or appended by another process)."""
    backend = _backend(request)
    backend.refresh()
    return backend


BackendDep = Annotated[Backend, Depends(_backend)]
"""For commands: they read what they need and wait for their own events."""
FreshDep = Annotated[Backend, Depends(_fresh_backend)]
"""For reads."""
