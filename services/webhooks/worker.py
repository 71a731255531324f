"""Delivery to one webhook: its events, strictly in log order, each until acknowledged.

Head-of-line by design: the next event waits until the receiver has taken the
current one (a 2xx answer), so a receiver sees its events in log order and a
failing one never skips any. Each webhook has its own worker, thread and HTTP
client, so a slow or dead receiver delays nobody else.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from typing import Any

import httpx

from ledgerflow.events.codec import encode
from ledgerflow.events.envelope import Event, Recorded, now_ms, uuid7
from ledgerflow.events.errors import LedgerflowError
from ledgerflow.events.log import EventLog, Item
from ledgerflow.events.webhook_entities import WebhookDelivery
from ledgerflow.services.leases import Lease, LeaseLost
from ledgerflow.services.secret_box import SecretBox
from ledgerflow.services.webhooks import checkpoint, signing
from ledgerflow.services.webhooks.backoff import Backoff
from ledgerflow.services.webhooks.decide import OWN_PREFIX
from ledgerflow.services.webhooks.metrics import WebhookMetrics
from ledgerflow.services.webhooks.queries import HookConfig
from ledgerflow.services.webhooks.store import CursorStore

logger = logging.getLogger("ledgerflow.webhooks")
OnAttempt = Callable[[HookConfig, WebhookDelivery], None]
SecretSource = Callable[[], SecretBox]
"""The server's key, asked for at delivery (a server without one still starts; its
deliveries of sealed secrets fail with what to set)."""
MayDeliver = Callable[[str, Event], bool]
"""(webhook name, event) -> whether to deliver it (see ledgerflow.services.auth.visibility)."""


def request_body(item: Item) -> bytes:
    """The event as the codec writes it. An event this build cannot decode (say, a type
    from a newer version) still goes out, with its raw data and the reason, not skipped."""
    if isinstance(item, Recorded):
        return encode(item.event)
    try:
        data: Any = json.loads(item.data)
    except ValueError:
        data = item.data
    doc = {"id": item.id, "type": item.type, "stream": item.stream, "data": data}
    return json.dumps({**doc, "corrupt": item.reason}, separators=(",", ":")).encode()


def _generator(items: Iterator[Item]) -> Generator[Item, None, None]:
    """The subscription as a generator, so `closing` releases its wake-up socket."""
    yield from items


def _excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of an error answer, for the deliveries table; never the whole of a huge one."""
    head = b""
    for chunk in response.iter_bytes():
        head += chunk
        if len(head) >= limit:
            break
    text = " ".join(head[:limit].decode("utf-8", "replace").split())
    return f": {text}" if text else ""


def _identity(item: Item) -> tuple[str, str]:
    if isinstance(item, Recorded):
        return item.event.id, item.event.type
    return item.id, item.type


class WebhookWorker:
    def __init__(
        self,
        hook: HookConfig,
        log: EventLog,
        store: CursorStore,
        backoff: Backoff,
        timeout_s: float,
        secrets: SecretSource,
        on_attempt: OnAttempt | None = None,
        may_deliver: MayDeliver | None = None,
        metrics: WebhookMetrics | None = None,
        lease: Lease | None = None,
    ) -> None:
        """With a `lease` (several dispatchers on one database), every write carries it,
        and the worker stops once another dispatcher has taken it."""
        self.hook = hook
        self.lease = lease
        self._secrets = secrets
        self._metrics = metrics or WebhookMetrics()
        self._may = may_deliver
        self._log = log
        self._store = store
        self._backoff = backoff
        self._timeout_s = timeout_s
        self._on_attempt = on_attempt
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"webhook-{hook.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the worker to finish; an attempt under way still completes and is recorded."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        failures = 0
        with httpx.Client(timeout=self._timeout_s, follow_redirects=False) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self._deliver_all(http)
                except LeaseLost as e:
                    logger.warning("webhook %s: %s", self.hook.name, e.message)
                    return
                except Exception as e:
                    # Nothing is skipped: the cursor stays where it was, and the worker
                    # starts over from it after a pause.
                    if time.monotonic() - started > self._backoff.cap_s:
                        failures = 0  # it had been working for a while
                    failures += 1
                    if isinstance(e, LedgerflowError):
                        logger.warning("webhook %s: %s; starting over", self.hook.name, e.message)
                    else:
                        logger.exception("webhook %s: delivery failed", self.hook.name)
                    self._stop.wait(self._backoff.delay(failures))

    def _deliver_all(self, http: httpx.Client) -> None:
        hook = self.hook
        state = self._store.load(hook.id, hook.deliver_after)
        cursor, pending = state.position, state.pending_event_id
        failures, next_time = state.attempts, state.next_attempt_time
        items = _generator(
            self._log.subscribe(checkpoint.parse(cursor), hook.events, stop=self._stop)
        )
        with closing(items):
            for item in items:
                event_id, event_type = _identity(item)
                if event_type.startswith(OWN_PREFIX):
                    continue
                if not self._may_deliver(item):
                    continue
                if event_id != pending:  # the stored retry state was for another event
                    failures, next_time = 0, None
                body, after = request_body(item), checkpoint.advance(cursor, item)
                logged = item.event.time if isinstance(item, Recorded) else now_ms()
                self._metrics.pending(hook.name, logged)
                while True:
                    if next_time is not None and not self._sleep_until(next_time):
                        return
                    attempt = self._attempt(http, item, body, after, failures + 1)
                    if attempt.ok:
                        self._store.acknowledge(hook.id, cursor, after, attempt, self.lease)
                        cursor, pending, failures, next_time = after, None, 0, None
                        self._metrics.pending(hook.name, None)
                        break
                    failures = attempt.attempt
                    next_time = now_ms() + int(self._backoff.delay(failures) * 1000)
                    self._store.fail(hook.id, cursor, attempt, next_time, self.lease)
                    pending = event_id
                if self._stop.is_set():
                    return

    def _may_deliver(self, item: Item) -> bool:
        """With auth on, only events the webhook's owner may read (asked per event, so a
        revoked permission stops deliveries at once); unreadable records never."""
        if self._may is None:
            return True
        return isinstance(item, Recorded) and self._may(self.hook.name, item.event)

    def _sleep_until(self, epoch_ms: int) -> bool:
        """Wait for a retry time (bounded by the cap, should the clock jump); False if
        asked to stop meanwhile."""
        wait_s = min(max(0, epoch_ms - now_ms()) / 1000, self._backoff.cap_s)
        return not self._stop.wait(wait_s)

    def _attempt(
        self, http: httpx.Client, item: Item, body: bytes, after: str, attempt: int
    ) -> WebhookDelivery:
        event_id, event_type = _identity(item)
        delivery_id = uuid7()
        started, start_ms = time.monotonic(), now_ms()
        status: int | None = None
        error: str | None = None
        try:
            # Opened per attempt, so the plain secret lives only as long as the request.
            headers = signing.headers(
                secret=self.hook.signing_secret(self._secrets()),
                event_id=event_id,
                event_type=event_type,
                delivery_id=delivery_id,
                timestamp=int(time.time()),
                body=body,
            )
            with http.stream("POST", self.hook.url, content=body, headers=headers) as response:
                status = response.status_code
                if not 200 <= status < 300:
                    error = f"HTTP {status}" + _excerpt(response)
        except httpx.HTTPError as e:
            error = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        except LedgerflowError as e:  # no key, or not the one that sealed it: say so
            logger.error("webhook %s: %s", self.hook.name, e.message)
            error = e.message
        record = WebhookDelivery(
            delivery_id=delivery_id,
            event_id=event_id,
            event_type=event_type,
            position=after,
            attempt=attempt,
            ok=error is None,
            status_code=status,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
            time=start_ms,
        )
        self._metrics.attempted(self.hook.name, record.ok, time.monotonic() - started)
        if self._on_attempt is not None:
            self._on_attempt(self.hook, record)
        return record
