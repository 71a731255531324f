"""What the SDK and CLI show about a training job, as the jobs view holds it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ledgerflow.events.job_payloads import JOB_TERMINAL


@dataclass(frozen=True)
class Job:
    """A training job as the views know it. `run_id` is the run it logs into."""

    job_id: str
    name: str
    kind: str
    entry_point: str
    status: str
    run_id: str
    experiment_id: str
    runtime: str
    params: dict[str, str] = field(default_factory=dict)
    cpus: float = 1.0
    gpus: float = 0.0
    memory: int | None = None
    num_workers: int = 1
    project: dict[str, str] = field(default_factory=dict)
    host: str = ""
    log_path: str = ""
    error: str | None = None
    log_tail: str = ""
    submitted_time: int = 0
    start_time: int | None = None
    end_time: int | None = None

    @property
    def done(self) -> bool:
        return self.status in JOB_TERMINAL

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Job:
        return cls(**doc)
