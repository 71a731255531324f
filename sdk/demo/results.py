"""What the demo's steps produced, as the summary prints it: the training jobs, the
bundles asked for and what a fresh process served.

Records only, shared by the steps (main, ab) and the summary, so neither needs the
other's module for them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerflow.demo.models import Trained
    from ledgerflow.events.bundle_entities import Bundle


@dataclass(frozen=True)
class Served:
    """What the fresh process predicted for the test images, and how long it took."""

    loader_module: str
    run_id: str
    predictions: list[int]
    labels: list[int]
    seconds: float

    @property
    def accuracy(self) -> float:
        return sum(p == y for p, y in zip(self.predictions, self.labels, strict=True)) / len(
            self.labels
        )


@dataclass(frozen=True)
class TrainingJob:
    """One training job as it ended, with the candidate its run became."""

    job_id: str
    name: str
    status: str
    run_id: str
    runtime: str
    log_tail: list[str]
    trained: Trained


@dataclass(frozen=True)
class Built:
    """One bundle the demo asked for: `bundle` is None when the build itself raised, with
    `error` saying why."""

    version: int
    framework: str
    target: str
    bundle: Bundle | None
    error: str | None = None

    @property
    def status(self) -> str:
        return self.bundle.status if self.bundle is not None else "failed"

    @property
    def built(self) -> Bundle | None:
        """The bundle when it was built, else None."""
        return self.bundle if self.bundle is not None and self.bundle.status == "built" else None

    @property
    def reason(self) -> str | None:
        return self.bundle.reason if self.bundle is not None else self.error
