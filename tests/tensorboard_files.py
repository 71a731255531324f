"""Reading TensorBoard event files with TensorBoard's own reader, for the tests."""

from __future__ import annotations

from pathlib import Path

import ledgerflow as lf


def scalars(folder: Path, tag: str) -> list[tuple[int, float, float]]:
    """(step, value, wall time) of every point TensorBoard reads for `tag` in `folder`."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})  # 0: keep every point
    acc.Reload()
    return [(e.step, e.value, e.wall_time) for e in acc.Scalars(tag)]


def logged_events(run_id: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) of `tag` in the event file autologging logged to the run."""
    folder = Path(lf.Client().download_artifacts(run_id, "tensorboard_logs"))
    assert [f.name for f in folder.iterdir()] == [f"events.out.tfevents.ledgerflow.{run_id}"]
    return [(step, value) for step, value, _ in scalars(folder, tag)]
