"""One backend per data location per process, opened on first use and closed at exit."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.events.settings import Settings
    from ledgerflow.services.bootstrap import Backend

_backends: dict[tuple[str, str, str], Backend] = {}
_lock = threading.Lock()


def backend_for(settings: Settings) -> Backend:
    if settings.is_remote:
        raise InvalidInput(
            f"tracking URI {settings.tracking_uri!r} points at a server; this version of the "
            "SDK works on a local data directory (set LEDGERFLOW_TRACKING_URI to a folder)",
            field="LEDGERFLOW_TRACKING_URI",
        )
    key = (settings.event_log_url, settings.views_db_url, settings.artifacts_root)
    with _lock:
        found = _backends.get(key)
        if found is None:
            from ledgerflow.events import tracing
            from ledgerflow.services.bootstrap import bootstrap

            tracing.configure(settings.otlp_endpoint, "ledgerflow-sdk")
            found = _backends[key] = bootstrap(settings)
        return found


def close_all() -> None:
    with _lock:
        for b in _backends.values():
            b.close()
        _backends.clear()


def _forget_in_child() -> None:
    """After fork, the child must not use the parent's database connections: drop them
    without closing (closing would disturb the parent) and open fresh ones on demand."""
    global _lock
    _lock = threading.Lock()
    for b in _backends.values():
        for engine in b.engines:
            engine.dispose(close=False)
    _backends.clear()


os.register_at_fork(after_in_child=_forget_in_child)
