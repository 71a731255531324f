"""Shipping the spool to the gateway: in the background, before reads, and at exit.

A daemon thread sends the spool in batches to `POST /api/v1/events` and deletes
rows only once the gateway has acknowledged them. While the gateway is down it
backs off exponentially (capped) and logging carries on into the spool. A read
first ships everything this process spooled and waits until it is projected,
so a process always reads its own writes. At exit the rest gets a bounded
wait; what is still left stays on disk for the next process or `ledgerflow sync`.

A gateway with auth on may refuse what was spooled. Refused credentials (401) concern
every event alike: nothing is dropped, shipping slows to one try a minute and says so
once, loudly, and reads raise `Unauthenticated`. Events on a run the caller may not EDIT
(403) are set aside into `refused.jsonl` with the reason, like invalid events (400), so
they do not hold up the rest; the warning says so, and the next read or flush raises
`PermissionDenied` saying how many were refused.

Rows that stand for calls (a run started, files logged, while the gateway could not be
reached: `ledgerflow.remote.pending`) are carried out in their place in the order. One the
gateway refuses (a deleted experiment, a missing parent run, no permission) is set aside
the same way, and so is everything logged to the run it would have started; the next read
or flush raises saying so.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import (
    InvalidInput,
    LedgerflowError,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from ledgerflow.remote import pending
from ledgerflow.remote.http import GatewayHTTP
from ledgerflow.remote.spool import EVENT, REFUSED_FILE, Claim, Row, Spool, orphans

log = logging.getLogger("ledgerflow")

INGEST_PATH = "/api/v1/events"
IDLE_WAKE_S = 1.0
FIRST_PAUSE_S = 0.1
BACKGROUND_TIMEOUT_S = 30.0
REFUSED_PAUSE_S = 60.0
"""How often the background thread tries again while the gateway refuses our credentials."""


def ingest_body(rows: list[Row], *, wait: bool) -> bytes:
    """The ingest request for `rows`, spliced from their stored JSON without re-encoding."""
    events = b",".join(r.body for r in rows)
    return b'{"wait":' + (b"true" if wait else b"false") + b',"events":[' + events + b"]}"


class Shipper:
    def __init__(
        self,
        http: GatewayHTTP,
        folder: Path,
        *,
        max_pause_s: float = 5.0,
        batch_events: int = 1000,
        owner: str = "",
    ) -> None:
        """`owner` is a digest of the credentials events are shipped with: the files a
        dead process left are adopted in the background only under the same identity (the
        gateway records whoever ships them as their actor); `ledgerflow sync` ships any."""
        self.http = http
        self.folder = folder
        self.owner = owner
        self.max_pause_s = max_pause_s
        self.batch_events = batch_events
        self._own: Spool | None = None
        self._claim: Claim | None = None
        self._create_lock = threading.Lock()
        self._ship_lock = threading.Lock()  # one sender at a time, so rows go out in order
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._unprojected = False  # shipped without waiting since the last waited flush
        self._down_since: float | None = None
        self._unauthenticated = False  # said once until the gateway accepts us again
        self._denied: list[tuple[int, PermissionDenied]] = []  # set aside since the last flush
        self._denied_lock = threading.Lock()
        self._carrier = pending.Carrier(http, folder)

    # writing -----------------------------------------------------------------------------
    def _spool(self) -> Spool:
        with self._create_lock:
            if self._own is None:
                self._claim = Claim.new(self.folder, self.owner)
                self._own = Spool(self._claim.db)
            return self._own

    def append(self, events: list[Event]) -> None:
        """Store events durably for shipping; never touches the network."""
        self._spool().append(events)
        self._wake.set()

    def defer(self, entry: pending.Entry) -> None:
        """Store a call for the gateway to carry out in its place among the events, once it
        answers (`remote.pending`); never touches the network."""
        self._spool().append_entry(*pending.encode(entry))
        self._wake.set()

    def stage(self, source: Path | bytes) -> str:
        """Keep a copy of `source` in the spool for an upload deferred with `defer`."""
        return self._spool().stage(source)

    def pending(self) -> int:
        return 0 if self._own is None else self._own.pending()

    @property
    def down(self) -> bool:
        """Whether the gateway was unreachable at the last try and our spool still waits
        for it: a call that needs it had better be deferred than tried again."""
        return self._down_since is not None and self.pending() > 0

    def note_unreachable(self, e: LedgerflowError) -> None:
        """A call could not reach the gateway and was deferred into the spool instead."""
        self._note_down(e)

    # background --------------------------------------------------------------------------
    def start(self) -> None:
        """Start shipping in the background; first, whatever dead processes left."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="ledgerflow-shipper", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        pause = 0.0
        adopted = False
        while not self._stop.is_set():
            if pause:
                self._stop.wait(pause)
            else:
                self._wake.wait(IDLE_WAKE_S)
                self._wake.clear()
            if self._stop.is_set():
                return
            try:
                while self._ship_batch(
                    wait=False, attempts=1, timeout=BACKGROUND_TIMEOUT_S, lock_wait=1.0
                ):
                    pass
                if not adopted:
                    self.ship_orphans(any_owner=False)
                    adopted = True
            except Unauthenticated as e:  # retrying soon will not help: say it, slow down
                if self._stop.is_set():
                    return
                pause = max(REFUSED_PAUSE_S, self.max_pause_s)
                self._note_refused(e)
            except LedgerflowError as e:  # the gateway is down or failing: keep spooling
                if self._stop.is_set():
                    return  # closing; what was not acknowledged stays in the spool
                pause = min(max(pause * 2, FIRST_PAUSE_S), self.max_pause_s)
                self._note_down(e)
            except Exception:
                if self._stop.is_set():
                    return
                pause = self.max_pause_s
                log.exception("ledgerflow: shipping the spool failed; will retry")
            else:
                pause = 0.0
                self._note_up()

    def _note_down(self, e: LedgerflowError) -> None:
        if self._down_since is None:
            self._down_since = time.monotonic()
            log.warning(
                "ledgerflow: cannot ship logged events to %s (%s); they wait in the spool "
                "under %s and are sent once it answers",
                self.http.base_url,
                e.message,
                self.folder,
            )

    def _note_refused(self, e: Unauthenticated) -> None:
        if not self._unauthenticated:
            self._unauthenticated = True
            log.error(
                "ledgerflow: %s; logged events are NOT being shipped: they wait in the spool "
                "under %s (nothing is dropped), and go once the gateway accepts this process's "
                "credentials, or later with `ledgerflow sync` run with credentials set",
                e.message,
                self.folder,
            )

    def _note_up(self) -> None:
        self._unauthenticated = False
        if self._down_since is not None:
            log.warning(
                "ledgerflow: %s answers again after %.0f s; shipping the spool",
                self.http.base_url,
                time.monotonic() - self._down_since,
            )
            self._down_since = None

    # sending -------------------------------------------------------------------------------
    def _ship_batch(
        self,
        *,
        wait: bool,
        attempts: int | None = None,
        timeout: float | None = None,
        lock_wait: float = -1,
    ) -> bool:
        """Send the oldest batch of our own spool. False when there was nothing to send,
        or another thread was sending and did not finish within `lock_wait` seconds."""
        if self._own is None:
            return False
        if not self._ship_lock.acquire(timeout=lock_wait):
            return False
        try:
            rows = self._own.peek(self.batch_events)
            if rows:
                self._send(self._own, rows, wait=wait, attempts=attempts, timeout=timeout)
            return bool(rows)
        finally:
            self._ship_lock.release()

    def _send(
        self,
        spool: Spool,
        rows: list[Row],
        *,
        wait: bool,
        attempts: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """POST rows; ack them once the gateway stored them. An invalid event (the
        gateway names it) is set aside rather than blocking the rest behind it. A row of
        another kind (`peek` gives it alone) is a call, carried out instead."""
        if rows[0].kind != EVENT:
            self._carrier.carry_out(spool, rows[0], attempts=attempts, timeout=timeout)
            return
        rows = self._carrier.without_unstarted(spool, rows)
        if not rows:
            return
        try:
            answer: Any = self.http.request(
                "POST",
                INGEST_PATH,
                content=ingest_body(rows, wait=wait),
                idempotent=True,
                attempts=attempts,
                timeout=timeout,
            )
        except PermissionDenied as e:
            self._denied_rows(spool, rows, e, wait=wait, attempts=attempts, timeout=timeout)
            return
        except InvalidInput as e:
            if len(rows) == 1:
                log.warning(
                    "ledgerflow: the gateway refused event %s: %s; it is kept in %s",
                    rows[0].id,
                    e.message,
                    spool.path.parent / "refused.jsonl",
                )
                spool.refuse(rows[0], e.message)
                return
            for row in rows:  # find the bad one(s); the good ones are stored once each
                self._send(spool, [row], wait=wait, attempts=attempts, timeout=timeout)
            return
        spool.ack([r.seq for r in rows])
        self._unprojected = self._unprojected or not wait
        for r in (answer or {}).get("rejected", []):
            log.warning(
                "ledgerflow: the gateway's projector refused %s event %s: %s (it is in the "
                "gateway's dead letters: `ledgerflow dead-letters list` there)",
                r.get("type"),
                r.get("id"),
                r.get("reason"),
            )

    def _denied_rows(
        self,
        spool: Spool,
        rows: list[Row],
        e: PermissionDenied,
        *,
        wait: bool,
        attempts: int | None,
        timeout: float | None,
    ) -> None:
        """The gateway refused a batch because the caller may not log to one of its runs
        (it names the first). Runs are judged apart: a batch of several runs' events is
        sent again run by run, in order within each run; one run's events are set aside."""
        streams: dict[str, list[Row]] = {}
        for row in rows:
            streams.setdefault(_stream(row), []).append(row)
        if len(streams) > 1:
            for group in streams.values():
                self._send(spool, group, wait=wait, attempts=attempts, timeout=timeout)
            return
        log.error(
            "ledgerflow: the gateway refused %d logged event(s) of %s: %s; they are kept "
            "in %s and will not be sent again",
            len(rows),
            next(iter(streams)),
            e.message,
            spool.path.parent / REFUSED_FILE,
        )
        spool.refuse_all(rows, e.message)
        with self._denied_lock:
            self._denied.append((len(rows), e))

    def _raise_denied(self) -> None:
        """Tell the caller about events and calls set aside as not theirs to log, or
        refused, once."""
        self._carrier.raise_refused()
        with self._denied_lock:
            denied, self._denied = self._denied, []
        if denied:
            count = sum(n for n, _ in denied)
            first = denied[0][1]
            raise PermissionDenied(
                f"{count} logged event(s) were refused and set aside in "
                f"{self.folder / REFUSED_FILE}: {first.message}",
                kind=first.kind,
                key=first.key,
                needs=first.needs,
            )

    def flush(self, *, patient: bool = True) -> None:
        """Ship everything this process spooled and wait until the gateway projected it
        (read-your-writes). Raises Unavailable when the gateway cannot be reached,
        Unauthenticated when it refuses our credentials, and PermissionDenied (or Conflict,
        for a deferred call) once after something was set aside. Events already logged
        wait out a gateway restart (`GatewayHTTP.patiently`) before that; with `patient`
        False each call is tried once instead (a caller that can defer its own call)."""
        attempts = None if patient else 1
        if self._own is not None or self._unprojected:
            with self.http.patiently(patient):
                while self._ship_batch(wait=True, attempts=attempts):
                    pass
                with self._ship_lock:
                    if self._unprojected:
                        self.http.request(
                            "POST",
                            INGEST_PATH,
                            json={"events": [], "wait": True},
                            attempts=attempts,
                        )
                        self._unprojected = False
        self._raise_denied()

    def ship_orphans(self, *, any_owner: bool = True) -> tuple[int, int, int]:
        """Ship the spool files dead processes left (with `any_owner` False, only those
        written under this shipper's identity): (files, events shipped, events left).
        Raises Unavailable when the gateway cannot be reached; what was not shipped stays."""
        files = shipped = left = 0
        mine = self._claim.db if self._claim is not None else None
        owner = None if any_owner else self.owner
        for claim in orphans(self.folder, exclude=mine, owner=owner):
            if self._stop.is_set():  # closing: our own file is no orphan, leave the rest
                claim.release(remove=False)
                break
            try:
                spool = Spool(claim.db)
            except Unavailable as e:  # not a spool we can read: leave it for a person
                log.warning("ledgerflow: skipping spool file %s: %s", claim.db, e.message)
                claim.release(remove=False)
                continue
            files += 1
            try:
                while rows := spool.peek(self.batch_events):
                    with self._ship_lock:
                        self._send(
                            spool, rows, wait=False, attempts=1, timeout=BACKGROUND_TIMEOUT_S
                        )
                    shipped += len(rows)
            finally:
                remaining = spool.pending()
                left += remaining
                spool.close()
                claim.release(remove=remaining == 0)
        return files, shipped, left

    # exit ----------------------------------------------------------------------------------
    def close(self, wait_s: float) -> int:
        """Stop the thread, ship what is left for up to `wait_s`, and release the spool
        file (removing it when empty). Returns how many events stay behind."""
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + wait_s
        if self._thread is not None:
            self._thread.join(timeout=max(0.0, min(wait_s, 5.0)))
        own, claim = self._own, self._claim
        if own is None or claim is None:
            return 0
        pause = FIRST_PAUSE_S
        while own.pending() and (remaining := deadline - time.monotonic()) > 0:
            try:
                shipped = self._ship_batch(
                    wait=False, attempts=1, timeout=max(remaining, 0.5), lock_wait=remaining
                )
            except Unauthenticated as e:  # waiting will not change the answer
                self._note_refused(e)
                break
            except LedgerflowError:
                shipped = False
            if not shipped:
                time.sleep(min(pause, max(deadline - time.monotonic(), 0)))
                pause = min(pause * 2, self.max_pause_s)
        left = own.pending()
        if self._ship_lock.acquire(timeout=0.1):  # else a send is still under way: let it be
            own.close()
            self._ship_lock.release()
        claim.release(remove=left == 0)
        self._own = self._claim = None
        if left:
            log.warning(
                "ledgerflow: %d logged events could not be shipped to %s before exit; they "
                "are kept in %s and will be shipped by the next process that logs there, "
                "or now with `ledgerflow sync`",
                left,
                self.http.base_url,
                claim.db,
            )
        return left


def _stream(row: Row) -> str:
    """The stream (run) a spooled event belongs to."""
    try:
        return str(json.loads(row.body).get("stream", ""))
    except ValueError:
        return ""
