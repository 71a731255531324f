"""The write-ahead spool: events a process logged but has not shipped to the gateway yet.

Each process logging to a gateway writes its own SQLite file in that gateway's
folder under `LEDGERFLOW_SPOOL_DIR`, and holds an exclusive lock on it while
it lives. A file per process keeps each process's events in the order it
logged them and lets its reads ship exactly its own events first; the lock
tells a newcomer (or `ledgerflow sync`) which files a dead process left: any
file whose lock it can take. Events are stored encoded (envelope and payload,
the JSON the gateway's ingest endpoint takes), with the ids that make sending
them twice harmless.

Besides events, a spool holds what a process did while the gateway could not be reached
and the gateway must carry out as a call: a run started, files logged as artifacts
(`ledgerflow.remote.pending`). Each is a row of its own `kind`, in order with the events,
so a run's start ships before its params and metrics; the files wait in a folder beside
the spool file (`<file>.files/`) until uploaded.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledgerflow.events import codec
from ledgerflow.events.envelope import Event
from ledgerflow.events.errors import Unavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT NOT NULL,
    body BLOB NOT NULL,
    kind TEXT NOT NULL DEFAULT 'event'
);
"""
REFUSED_FILE = "refused.jsonl"
REFUSED_FILES = "refused-files"
"""Beside refused.jsonl: the staged files of artifact uploads the gateway refused."""
EVENT = "event"
"""The kind of a spooled event; the other kinds are `ledgerflow.remote.pending`'s."""


def folder_for(root: Path, tracking_uri: str) -> Path:
    """The spool folder of one gateway: readable, and unique per URL."""
    uri = tracking_uri.rstrip("/")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", uri.split("://", 1)[-1]).strip("-")[:60]
    digest = hashlib.sha256(uri.encode()).hexdigest()[:10]
    return root / f"{slug}-{digest}"


@dataclass(frozen=True, slots=True)
class Row:
    seq: int
    id: str
    body: bytes
    kind: str = EVENT


class Spool:
    """One spool file. Appends are durable (WAL, synchronous=FULL) when they return."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.executescript(_SCHEMA)
            columns = {c[1] for c in self._conn.execute("PRAGMA table_info(pending)")}
            if "kind" not in columns:  # a spool file written before rows had kinds
                self._conn.execute(
                    f"ALTER TABLE pending ADD COLUMN kind TEXT NOT NULL DEFAULT '{EVENT}'"
                )
        except (OSError, sqlite3.Error) as e:
            raise Unavailable(
                f"cannot open the spool {path}: {e}; is LEDGERFLOW_SPOOL_DIR a writable folder?"
            ) from None

    def append(self, events: Sequence[Event]) -> None:
        self._insert([(e.id, codec.encode(e), EVENT) for e in events])

    def append_entry(self, kind: str, id_: str, body: bytes) -> None:
        """A row the gateway takes as a call rather than as an event (`remote.pending`)."""
        self._insert([(id_, body, kind)])

    def _insert(self, rows: Sequence[tuple[str, bytes, str]]) -> None:
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._conn.executemany(
                    "INSERT INTO pending (id, body, kind) VALUES (?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
            except sqlite3.Error as e:
                with contextlib.suppress(sqlite3.Error):
                    self._conn.execute("ROLLBACK")
                raise Unavailable(f"cannot write the spool {self.path}: {e}") from None

    def peek(self, max_events: int = 1000, max_bytes: int = 4 << 20) -> list[Row]:
        """The oldest pending events, at most `max_events` and about `max_bytes`, up to the
        first row of another kind; or that row alone when it comes first."""
        out: list[Row] = []
        size = 0
        with self._lock:
            cursor = self._conn.execute(
                "SELECT seq, id, body, kind FROM pending ORDER BY seq LIMIT ?", (max_events,)
            )
            for seq, id_, body, kind in cursor:
                if out and (size + len(body) > max_bytes or kind != EVENT):
                    break
                out.append(Row(seq, id_, bytes(body), kind))
                size += len(body)
                if kind != EVENT:
                    break
        return out

    # files waiting to be uploaded ----------------------------------------------------------
    @property
    def files(self) -> Path:
        """Where files logged while the gateway was unreachable wait for their upload."""
        return files_of(self.path)

    def stage(self, source: Path | bytes) -> str:
        """Copy `source` (a file, or bytes) into the spool's folder of files, durably;
        returns the name it is kept under."""
        name = uuid.uuid4().hex
        target = self.files / name
        try:
            self.files.mkdir(parents=True, exist_ok=True)
            if isinstance(source, bytes):
                target.write_bytes(source)
            else:
                shutil.copyfile(source, target)
            with open(target, "rb") as f:
                os.fsync(f.fileno())
        except OSError as e:
            target.unlink(missing_ok=True)
            raise Unavailable(
                f"cannot keep {source if isinstance(source, Path) else 'the data'} in the "
                f"spool {self.files}: {e}; is there room in LEDGERFLOW_SPOOL_DIR?"
            ) from None
        return name

    def staged(self, name: str) -> Path:
        return self.files / name

    def unstage(self, names: Sequence[str], *, keep: bool = False) -> None:
        """Forget staged files once uploaded; with `keep`, move them beside refused.jsonl
        (their upload was refused) instead of deleting them."""
        for name in names:
            if keep:
                aside = self.path.parent / REFUSED_FILES
                aside.mkdir(exist_ok=True)
                with contextlib.suppress(OSError):
                    os.replace(self.staged(name), aside / name)
            else:
                self.staged(name).unlink(missing_ok=True)

    def ack(self, seqs: Sequence[int]) -> None:
        """Forget events the gateway has stored."""
        with self._lock:
            for start in range(0, len(seqs), 500):
                chunk = seqs[start : start + 500]
                marks = ",".join("?" * len(chunk))
                self._conn.execute(f"DELETE FROM pending WHERE seq IN ({marks})", chunk)

    def refuse(self, row: Row, reason: str) -> None:
        """Move an event the gateway refused (invalid, or not the caller's to log) out of
        the way, into `refused.jsonl` beside the spool, so it neither blocks the rest nor
        vanishes."""
        self.refuse_all([row], reason)

    def refuse_all(self, rows: Sequence[Row], reason: str) -> None:
        """`refuse` for several events at once, for one reason."""
        now = time.time_ns() // 1_000_000
        lines = [
            json.dumps(
                {"id": r.id, "reason": reason, "time": now, "event": json.loads(r.body)}
                if r.kind == EVENT
                else {"id": r.id, "reason": reason, "time": now, r.kind: json.loads(r.body)}
            )
            for r in rows
        ]
        with open(self.path.parent / REFUSED_FILE, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        self.ack([r.seq for r in rows])

    def pending(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT count(*) FROM pending").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class Claim:
    """An exclusive lock on one spool file: held by its writer while it lives, then by
    whoever ships what it left. The lock is a separate `.lock` file (flock), which
    the operating system releases when the holder dies, however it dies."""

    def __init__(self, db: Path, fd: int) -> None:
        self.db = db
        self._fd: int | None = fd

    @classmethod
    def new(cls, folder: Path, owner: str = "") -> Claim:
        """A fresh spool file name for this process, locked before the file exists;
        `owner` (a digest of the credentials it ships with, '' for none) is written beside
        it, so another process adopts it only under the same identity."""
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(folder / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            if owner:
                (folder / f"{name}.owner").write_text(owner)
        except OSError as e:
            raise Unavailable(
                f"cannot create a spool in {folder}: {e}; is LEDGERFLOW_SPOOL_DIR a writable "
                "folder?"
            ) from None
        fcntl.flock(fd, fcntl.LOCK_EX)
        return cls(folder / f"{name}.db", fd)

    @classmethod
    def take(cls, db: Path) -> Claim | None:
        """The claim on a spool file whose writer is gone; None while someone holds it."""
        try:
            fd = os.open(db.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return None
        if not db.exists():  # shipped and removed by someone else meanwhile
            db.with_suffix(".lock").unlink(missing_ok=True)
            os.close(fd)
            return None
        return cls(db, fd)

    def release(self, *, remove: bool) -> None:
        """Let go; with remove=True delete the (shipped) spool file and its lock first."""
        if self._fd is None:
            return
        if remove:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.db}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(files_of(self.db), ignore_errors=True)
            self.db.with_suffix(".owner").unlink(missing_ok=True)
            self.db.with_suffix(".lock").unlink(missing_ok=True)
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None


def files_of(db: Path) -> Path:
    """The folder of files staged for upload beside the spool file `db`."""
    return db.with_suffix(".files")


def owner_of(db: Path) -> str:
    """The credentials digest a spool file was written with ('' for none)."""
    try:
        return db.with_suffix(".owner").read_text().strip()
    except OSError:
        return ""


def orphans(folder: Path, exclude: Path | None = None, owner: str | None = None) -> Iterator[Claim]:
    """Claims on the spool files in `folder` that no living process holds; with `owner`,
    only those written under that identity."""
    if not folder.is_dir():
        return
    for db in sorted(folder.glob("*.db")):
        if db != exclude and (owner is None or owner_of(db) == owner):
            claim = Claim.take(db)
            if claim is not None:
                yield claim
