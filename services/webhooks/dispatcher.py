"""The webhook dispatcher: keeps one delivery worker running per active webhook.

Every `scan_interval_s` it reads the webhooks view and starts, restarts (when
the url, patterns or secret changed) or stops workers to match. A worker's
progress is its durable cursor, so stopping the dispatcher at any moment, even
by SIGKILL, loses nothing: at worst the event in flight is delivered again
(receivers dedupe by `X-Ledgerflow-Event-Id`).

Several dispatchers may run on one database, for availability: each webhook is
delivered by the one holding its lease (`store.py`), renewed every scan; when a holder
dies, another takes its webhooks over once the lease expires (`lease_s`, 5 s), and a
holder stopping gives its leases up at once.

Run it in the foreground with `ledgerflow webhooks run`, or embed it:
`WebhookDispatcher(log, engine, secrets=lambda: box).start()` ... `.stop()`; `box` is
the server's SecretBox, which opens the webhooks' sealed secrets at delivery.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Engine

from ledgerflow.events.log import EventLog
from ledgerflow.services.leases import holder_name
from ledgerflow.services.webhooks.backoff import Backoff
from ledgerflow.services.webhooks.metrics import WebhookMetrics
from ledgerflow.services.webhooks.queries import HookConfig, WebhookQueries
from ledgerflow.services.webhooks.store import CursorStore
from ledgerflow.services.webhooks.worker import MayDeliver, OnAttempt, SecretSource, WebhookWorker

logger = logging.getLogger("ledgerflow.webhooks")


class WebhookDispatcher:
    def __init__(
        self,
        log: EventLog,
        engine: Engine,
        *,
        secrets: SecretSource,
        reader: Engine | None = None,
        backoff: Backoff | None = None,
        timeout_s: float = 10.0,
        scan_interval_s: float = 1.0,
        refresh: Callable[[], None] | None = None,
        on_attempt: OnAttempt | None = None,
        may_deliver: MayDeliver | None = None,
        metrics: WebhookMetrics | None = None,
        lease_s: float = 5.0,
    ) -> None:
        """`engine` writes the views database (cursors live there), `reader` reads the
        webhooks view (default: `engine`); `refresh`, when given, brings the views up to
        the log before each scan (the embedded backend's `refresh`); `may_deliver`, with
        auth on, keeps from each webhook the events its owner may not read; `metrics`: the
        process's (by default a registry of the dispatcher's own); `lease_s`: how long a
        webhook stays with this dispatcher without a renewal (renewed every scan, so keep
        it a few times `scan_interval_s`)."""
        self.log = log
        self._secrets = secrets
        self.backoff = backoff or Backoff()
        self.timeout_s = timeout_s
        self.scan_interval_s = scan_interval_s
        self.lease_ms = int(lease_s * 1000)
        self.holder = holder_name()
        self._engine = engine
        self._refresh = refresh
        self._on_attempt = on_attempt
        self._may_deliver = may_deliver
        self.metrics = metrics or WebhookMetrics()
        self.metrics.workers.set_function(lambda: float(len(self.running)))
        self._queries = WebhookQueries(reader or engine)
        self._store: CursorStore | None = None
        self._workers: dict[str, WebhookWorker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> WebhookDispatcher:
        """Run in a background thread until `stop()`."""
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(target=self.run, name="webhook-dispatcher", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop scanning and every worker; waits for attempts under way to be recorded."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout if timeout is not None else self.timeout_s + 30)

    def __enter__(self) -> WebhookDispatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> None:
        """Scan and supervise in the calling thread until `stop()` (from another thread or
        a signal handler)."""
        try:
            while not self._stop.is_set():
                try:
                    self.scan()
                except Exception:
                    logger.exception("webhook dispatcher: scan failed; trying again")
                self._stop.wait(self.scan_interval_s)
        finally:
            held = [w.lease for w in self._workers.values() if w.lease is not None]
            self._stop_workers(list(self._workers))
            if self._store is not None and held:
                try:
                    self._store.release(held)  # others take over now, not at expiry
                except Exception:
                    logger.exception("webhook dispatcher: could not give up its leases")

    @property
    def running(self) -> dict[str, str]:
        """Names of the webhooks being delivered to, by id."""
        return {i: w.hook.name for i, w in self._workers.items() if w.is_alive()}

    def scan(self) -> None:
        """Make the running workers match the webhooks view once."""
        if self._store is None:
            self._store = CursorStore(self._engine)
        if self._refresh is not None:
            self._refresh()
        wanted: dict[str, HookConfig] = {c.id: c for c in self._queries.configs()}
        held = self._store.renew(self.holder, self.lease_ms) if self._workers else {}
        stale = [
            i
            for i, worker in self._workers.items()
            if wanted.get(i) != worker.hook
            or not worker.is_alive()
            or worker.lease is None
            or held.get(i) != worker.lease.token  # another dispatcher took it over
        ]
        self._stop_workers(stale)
        # A deleted webhook's cursor goes once its worker has stopped (above), so the
        # worker cannot recreate it.
        orphans = self._queries.orphan_cursors() - set(self._workers)
        self._store.forget(orphans)
        for hook_id, hook in wanted.items():
            if hook_id not in self._workers and not self._stop.is_set():
                lease = self._store.claim(hook_id, self.holder, self.lease_ms)
                if lease is None:
                    continue  # another dispatcher delivers it
                worker = WebhookWorker(
                    hook, self.log, self._store, self.backoff, self.timeout_s, self._secrets,
                    self._on_attempt, self._may_deliver, self.metrics, lease,
                )  # fmt: skip
                self.metrics.watch(hook.name)
                worker.start()
                self._workers[hook_id] = worker

    def _stop_workers(self, ids: list[str]) -> None:
        workers = [self._workers.pop(i) for i in ids if i in self._workers]
        for worker in workers:
            worker.stop()
            self.metrics.forget(worker.hook.name)
        for worker in workers:
            worker.join(self.timeout_s + 30)
            if worker.is_alive():
                logger.warning("webhook %s: worker did not stop in time", worker.hook.name)
