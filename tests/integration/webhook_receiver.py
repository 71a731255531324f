"""A real HTTP webhook receiver for tests: http.server in a thread on a chosen port.

It verifies every request's signatures, Ledgerflow's with
`ledgerflow.webhooks.verify_signature` and the Standard Webhooks one with the published
`standardwebhooks` library (a bad one is answered 400 and counted in `rejected`), records what it accepted in
arrival order, and can be told to fail, to block, or to go down and come back on
the same port.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from ledgerflow.webhooks import WebhookSignatureError, standard_secret, verify_signature
from tests.conftest import free_port
from tests.waiting import wait_until


@dataclass(frozen=True)
class Request:
    event_id: str
    event_type: str
    delivery_id: str
    message_id: str
    """Standard Webhooks' `webhook-id`: the same on every attempt at one event."""
    status: int
    body: dict[str, Any]
    raw: bytes


class Receiver:
    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.secret = ""
        self.requests: list[Request] = []  # every verified request, whatever was answered
        self.rejected: list[str] = []
        self.status: Callable[[int], int] = lambda n: 200  # request number (from 0) -> answer
        self.gate: threading.Event | None = None  # when set, requests wait for it
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def up(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    verify_signature(receiver.secret, self.headers, raw)
                except WebhookSignatureError as e:
                    receiver.rejected.append(e.message)
                    self._answer(400)
                    return
                try:  # and as any Standard Webhooks receiver would, with its library
                    Webhook(standard_secret(receiver.secret)).verify(raw, dict(self.headers))
                except WebhookVerificationError as e:
                    receiver.rejected.append(f"standardwebhooks: {e}")
                    self._answer(400)
                    return
                if receiver.gate is not None:
                    receiver.gate.wait(60)
                with receiver._lock:
                    status = receiver.status(len(receiver.requests))
                    receiver.requests.append(
                        Request(
                            self.headers["X-Ledgerflow-Event-Id"],
                            self.headers["X-Ledgerflow-Event-Type"],
                            self.headers["X-Ledgerflow-Delivery"],
                            self.headers["webhook-id"],
                            status,
                            json.loads(raw),
                            raw,
                        )
                    )
                self._answer(status)

            def _answer(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        # shutdown() waits for serve_forever's next poll: keep going down (and teardown) quick
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def accepted(self) -> list[str]:
        """Event ids of the requests answered 2xx, in arrival order."""
        with self._lock:
            return [r.event_id for r in self.requests if 200 <= r.status < 300]

    def distinct_accepted(self) -> int:
        return len(set(self.accepted()))

    def wait_for(self, count: int, timeout: float = 60) -> list[str]:
        """Wait until `count` distinct events were accepted; return all accepted ids."""
        wait_until(lambda: self.distinct_accepted() >= count, timeout,
                   lambda: f"{count} events ({self.distinct_accepted()} arrived)")  # fmt: skip
        return self.accepted()
