"""One backend per data location per process, opened on first use and closed at exit.

A data directory (or explicit log/views/artifacts settings) gets the embedded
backend; an http(s):// tracking URI gets the remote one, which talks to a
`ledgerflow gateway` through a write-ahead spool.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerflow._ports import BackendPort
    from ledgerflow.events.settings import Settings

_backends: dict[tuple[str, ...], BackendPort] = {}
_lock = threading.Lock()


def _key(settings: Settings) -> tuple[str, ...]:
    if settings.is_remote:
        return (settings.tracking_uri.rstrip("/"), str(settings.spool_root))
    return (settings.event_log_url, settings.views_db_url, settings.artifacts_root)


def backend_for(settings: Settings) -> BackendPort:
    key = _key(settings)
    with _lock:
        found = _backends.get(key)
        if found is None:
            from ledgerflow.events import tracing

            tracing.configure(settings.otlp_endpoint, "ledgerflow-sdk")
            if settings.is_remote:
                from ledgerflow.remote import RemoteBackend

                found = _backends[key] = RemoteBackend(settings)
            else:
                from ledgerflow.services.bootstrap import bootstrap

                found = _backends[key] = bootstrap(settings)
        return found


def close_all() -> None:
    with _lock:
        for b in _backends.values():
            b.close()
        _backends.clear()


def _forget_in_child() -> None:
    """After fork, the child must not use the parent's connections or its spool: drop
    them without closing (closing would disturb the parent) and open fresh ones on
    demand (a remote backend gets its own spool file)."""
    global _lock
    _lock = threading.Lock()
    for b in _backends.values():
        for engine in getattr(b, "engines", ()):
            engine.dispose(close=False)
    _backends.clear()


os.register_at_fork(after_in_child=_forget_in_child)
