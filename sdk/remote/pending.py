"""What a process did while the gateway could not be reached that the gateway carries out
as a call rather than taking as an event: a run started (its id chosen here) and files
logged as artifacts. Each waits in the spool as a row of its own kind, in order with the
events, so a run's start reaches the gateway before its params and metrics, and is carried
out once the gateway answers:

- a start (`StartRun`): an experiment known here only by name is looked up, or created, by
  that name (`PUT /experiments/by-name`, what `set_experiment` does online), the Default
  experiment is made if it is missing, then `POST /runs` with the chosen id. The gateway
  answers a start it already made with that run (`decide_start_run`), so a start sent
  twice (its answer was lost, or two processes shipped one spool) makes one run;
- an upload (`Upload`): the files staged in the spool go up as `log_artifacts` sends them
  (`remote.uploads`), then leave the spool.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from ledgerflow.events.errors import (
    Conflict,
    InvalidInput,
    LedgerflowError,
    NotFound,
    PermissionDenied,
)
from ledgerflow.remote.http import API, GatewayHTTP
from ledgerflow.remote.spool import REFUSED_FILE, REFUSED_FILES, Row, Spool
from ledgerflow.remote.uploads import upload
from ledgerflow.services.gateway.schemas import ExperimentOut, RunIn
from ledgerflow.services.tracking.decide import DEFAULT_EXPERIMENT_ID

log = logging.getLogger("ledgerflow")

START = "run.start"
UPLOAD = "run.upload"
PENDING_EXPERIMENT = "pending:"
"""How an experiment known only by its name (set while the gateway was unreachable) is
named where an id goes: `pending:<name>`. Ids the gateway makes are digits."""


def pending_experiment_id(name: str) -> str:
    return PENDING_EXPERIMENT + name


def pending_experiment_name(experiment_id: str) -> str | None:
    """The name in a `pending:<name>` experiment id; None for a real id."""
    if experiment_id.startswith(PENDING_EXPERIMENT):
        return experiment_id[len(PENDING_EXPERIMENT) :]
    return None


class _Entry(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StartRun(_Entry):
    """A run started while the gateway could not be reached: the body of its `POST /runs`
    (its id, start time and name chosen here), and who started it."""

    actor: str
    run: RunIn

    @property
    def run_id(self) -> str:
        return str(self.run.run_id)


class StagedFile(_Entry):
    name: str
    """Its name in the spool's folder of files."""
    path: str
    """Its artifact path in the run."""


class Upload(_Entry):
    """Files logged to a run while the gateway could not be reached, staged in the spool."""

    actor: str
    run_id: str
    files: tuple[StagedFile, ...]


Entry = StartRun | Upload
_KINDS: dict[str, type[StartRun] | type[Upload]] = {START: StartRun, UPLOAD: Upload}


def encode(entry: Entry) -> tuple[str, str, bytes]:
    """(kind, id, body) of the spool row that keeps `entry`."""
    kind = START if isinstance(entry, StartRun) else UPLOAD
    return kind, uuid.uuid4().hex, entry.model_dump_json().encode()


def decode(row: Row) -> Entry:
    """The entry a spool row keeps; InvalidInput for one this version cannot read."""
    kind = _KINDS.get(row.kind)
    if kind is None:
        raise InvalidInput(f"spool row {row.id} is a {row.kind!r}, unknown to this version")
    try:
        return kind.model_validate_json(row.body)
    except ValidationError as e:
        raise InvalidInput(f"spool row {row.id} ({row.kind}) cannot be read: {e}") from None


def staged(entry: Entry) -> list[str]:
    """The names of the files an entry keeps in the spool (none for a start)."""
    return [f.name for f in entry.files] if isinstance(entry, Upload) else []


def carry_out(
    http: GatewayHTTP,
    spool: Spool,
    entry: Entry,
    *,
    attempts: int | None = None,
    timeout: float | None = None,
) -> None:
    """Make the calls `entry` stands for. Raises what the gateway answered; sending it
    all again afterwards is harmless (the start is idempotent by its run id, an upload
    overwrites the same paths)."""
    ask: dict[str, Any] = {"actor": entry.actor, "attempts": attempts, "timeout": timeout}
    if isinstance(entry, StartRun):
        run = entry.run
        name = pending_experiment_name(run.experiment_id)
        if name is not None:
            doc = http.request("PUT", f"{API}/experiments/by-name", params={"name": name}, **ask)
            experiment = ExperimentOut.model_validate(doc).entity()
            run = run.model_copy(update={"experiment_id": experiment.experiment_id})
        elif run.experiment_id == DEFAULT_EXPERIMENT_ID:
            http.request("PUT", f"{API}/experiments/default", **ask)
        body = run.model_dump(mode="json")
        http.request("POST", f"{API}/runs", json=body, idempotent=True, **ask)
        return
    files = [(spool.staged(f.name), f.path) for f in entry.files]
    gone = [path for source, path in files if not source.is_file()]
    if gone:
        raise InvalidInput(f"the copies of {', '.join(gone)} kept in {spool.files} are gone")
    upload(http, entry.run_id, files, **ask)


class Carrier:
    """Carries out a shipper's call rows, and sets aside what the gateway refuses (a start in
    a deleted experiment, under a missing parent, without permission): the row, and then
    everything logged to the run whose start was refused, into refused.jsonl with the
    reason. The next flush raises the refusal, once."""

    def __init__(self, http: GatewayHTTP, folder: Path) -> None:
        self.http = http
        self.folder = folder
        self._unstarted: dict[str, str] = {}  # runs whose start was refused: why
        self._refused: list[LedgerflowError] = []  # since the last flush
        self._lock = threading.Lock()

    def carry_out(
        self, spool: Spool, row: Row, *, attempts: int | None, timeout: float | None
    ) -> None:
        """Carry out a call row and forget it; set it aside when refused. Raises what is
        worth trying again (Unavailable, Unauthenticated)."""
        try:
            entry = decode(row)
        except InvalidInput as e:
            log.error("ledgerflow: %s; it is set aside in %s", e.message, self.folder)
            spool.refuse_all([row], e.message)
            return
        if entry.run_id in self._unstarted:
            reason = f"run {entry.run_id} was not started: {self._unstarted[entry.run_id]}"
            _set_aside(spool, row, entry, reason)
            return
        try:
            carry_out(self.http, spool, entry, attempts=attempts, timeout=timeout)
        except (InvalidInput, NotFound, Conflict, PermissionDenied) as e:
            self._refuse(spool, row, entry, e)
            return
        spool.unstage(staged(entry))
        spool.ack([row.seq])

    def _refuse(self, spool: Spool, row: Row, entry: Entry, e: LedgerflowError) -> None:
        run_id = entry.run_id
        what, aside = (
            ("start", "it and what was logged to the run after it are")
            if isinstance(entry, StartRun)
            else ("artifact upload", f"its files are in {self.folder / REFUSED_FILES}, and it is")
        )
        message = (
            f"the {what} of run {run_id}, made while the gateway could not be reached, was "
            f"refused: {e.message}; {aside} set aside in {self.folder / REFUSED_FILE}"
        )
        log.error("ledgerflow: %s", message)
        refused: LedgerflowError = (
            PermissionDenied(message, kind=e.kind, key=e.key, needs=e.needs)
            if isinstance(e, PermissionDenied)
            else Conflict(message)
        )
        with self._lock:
            if isinstance(entry, StartRun):
                self._unstarted[run_id] = e.message
            self._refused.append(refused)
        _set_aside(spool, row, entry, e.message)

    def without_unstarted(self, spool: Spool, rows: list[Row]) -> list[Row]:
        """`rows` (events) less those logged to a run whose start was refused, set aside."""
        if not self._unstarted:
            return rows
        keep = []
        for row in rows:
            run_id = _run_of_event(row)
            if run_id in self._unstarted:
                spool.refuse_all([row], f"run {run_id} was not started: {self._unstarted[run_id]}")
            else:
                keep.append(row)
        return keep

    def raise_refused(self) -> None:
        """Raise the first refusal since the last call, if any."""
        with self._lock:
            refused, self._refused = self._refused, []
        if refused:
            raise refused[0]


def _set_aside(spool: Spool, row: Row, entry: Entry, reason: str) -> None:
    """Move a call row into refused.jsonl, and the files of an upload beside it."""
    spool.unstage(staged(entry), keep=True)
    spool.refuse_all([row], reason)


def _run_of_event(row: Row) -> str:
    try:
        return str(json.loads(row.body).get("stream", "")).removeprefix("run:")
    except ValueError:
        return ""
