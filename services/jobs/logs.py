"""A job's output as the gateway gives it (`GET /api/v1/jobs/{id}/log`), from a byte offset
so a page can follow a running job: the live log file where this machine can read it, else
the copy kept as the run's `job/output.log` artifact once the job ended, else the tail the
jobs view keeps."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.job_entities import Job
from ledgerflow.services.tracking.service import TrackingService

MAX_CHUNK = 1 << 20
"""At most this many bytes per answer; the next offset says where to go on."""
ARTIFACT = "job/output.log"


@dataclass(frozen=True)
class LogChunk:
    text: str
    offset: int
    """Where the next read starts (bytes into the log)."""
    source: str
    """file (the live log), artifact (the run's job/output.log), tail (the view's last lines)
    or none (nothing written yet)."""
    done: bool
    """The job has ended: nothing will be added."""


def read_log(job: Job, tracking: TrackingService, offset: int = 0) -> LogChunk:
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}", field="offset")
    if job.log_path and Path(job.log_path).is_file():
        return _chunk(Path(job.log_path), offset, "file", job.done)
    if job.done:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                got = tracking.download_artifacts(job.run_id, ARTIFACT, Path(tmp))
            except NotFound:
                tail = job.log_tail.encode()
                return LogChunk(tail[offset:].decode(errors="replace"), len(tail), "tail", True)
            return _chunk(Path(got), offset, "artifact", True)
    return LogChunk("", offset, "none", False)


def _chunk(path: Path, offset: int, source: str, done: bool) -> LogChunk:
    with path.open("rb") as f:
        f.seek(offset)
        data = f.read(MAX_CHUNK)
    if not done and len(data) < MAX_CHUNK:  # a running job's last line may be half written
        data = data[: data.rfind(b"\n") + 1]
    return LogChunk(data.decode(errors="replace"), offset + len(data), source, done)
