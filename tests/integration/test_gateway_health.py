"""The gateway's own background threads (the event hub feeding SSE, gRPC streams and the
read cache) are watched: one that dies fails `/health` and stops the process, instead of
leaving streams silent and cached reads stale behind a healthy answer."""

from __future__ import annotations

import queue
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest

from ledgerflow.events.settings import Settings
from ledgerflow.events.sqlite_log import SQLiteEventLog
from ledgerflow.services.bootstrap import bootstrap
from ledgerflow.services.gateway.server import serve
from ledgerflow.services.watchdog import ServiceFailed
from tests.integration.faults import BreakingLog
from tests.waiting import wait_until


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # the point
def test_a_dead_event_hub_fails_health_and_stops_the_gateway(tmp_path: Path) -> None:
    settings = Settings(tracking_uri=str(tmp_path / "data"))
    log = BreakingLog(SQLiteEventLog(settings.event_log_url.removeprefix("sqlite:///")))
    backend = bootstrap(settings, log=log)  # type: ignore[arg-type]
    urls: queue.Queue[str] = queue.Queue()
    outcome: dict[str, ServiceFailed] = {}

    def run() -> None:
        try:
            serve(settings, "127.0.0.1", 0, backend=backend, ready=urls.put)
        except ServiceFailed as e:
            outcome["failed"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        url = urls.get(timeout=60)
        assert httpx.get(url + "/health", timeout=10).status_code == 200
        log.broken.set()
        created = httpx.post(url + "/api/v1/experiments", json={"name": "wake"}, timeout=10)
        assert created.status_code == 201  # the hub's thread meets the new event and dies
        seen: dict[str, Any] = {}

        def failing() -> bool:
            r = httpx.get(url + "/health", timeout=10)
            seen.update(status=r.status_code, body=r.json())
            return r.status_code == 503

        wait_until(failing, 10)
        assert seen["body"]["status"] == "failing" and "event hub" in seen["body"]["failed"]
        thread.join(30)  # the server stops itself a moment later
        assert not thread.is_alive()
        assert "event hub" in outcome["failed"].failures
    finally:
        backend.close()
