"""Runs' metrics as TensorBoard event files, and TensorBoard started on them.

`export(run_ids, logdir)` writes, for each run, a folder `<run name>-<first 8 of its id>`
holding one event file with every point of every metric (tag = the metric's key, step
and wall time as logged), so TensorBoard shows the runs side by side. Nothing of
TensorFlow or TensorBoard is needed to write them (`ledgerflow._tfevents`); viewing needs
TensorBoard (`pip install tensorboard`), which `launch` starts. Keras and Lightning
autologging log their run's event files as the run's `tensorboard_logs/` artifacts.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ledgerflow._tfevents import EventFileWriter
from ledgerflow.events.errors import InvalidInput

if TYPE_CHECKING:
    from ledgerflow.client import Client

ARTIFACT_DIR = "tensorboard_logs"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def export(
    run_ids: Sequence[str], logdir: str | os.PathLike[str], client: Client | None = None
) -> list[Path]:
    """Write each run's metrics under `logdir`; the run folders written, in order."""
    from ledgerflow.fluent import _client

    if not run_ids:
        raise InvalidInput("name at least one run to export", field="run_ids")
    c = client if client is not None else _client()
    root = Path(logdir)
    folders = []
    for run_id in dict.fromkeys(run_ids):  # once each, in the order given
        run = c.get_run(run_id)
        name = _UNSAFE.sub("_", run.info.run_name or "run").strip("_") or "run"
        folder = root / f"{name}-{run.info.run_id[:8]}"
        write_run(c, run.info.run_id, folder, sorted(run.data.metrics))
        folders.append(folder)
    return folders


def write_run(
    client: Client, run_id: str, folder: Path, keys: Sequence[str], suffix: str | None = None
) -> Path:
    """One event file in `folder` with every point of the run's metrics `keys`."""
    with EventFileWriter(folder, suffix) as writer:
        for key in keys:
            history = client.get_metric_history(run_id, key)
            writer.add_scalars((key, m.value, m.step, m.timestamp / 1000) for m in history)
        return writer.path


def log_run_events(client: Client, run_id: str) -> None:
    """Log the run's metrics so far as an event file under its `tensorboard_logs/`
    artifacts (what autologging does at the end of training), named after the run, so a
    later training in the same run rewrites it whole rather than adding a copy."""
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as tmp:
        write_run(client, run_id, Path(tmp), sorted(run.data.metrics), f"ledgerflow.{run_id}")
        client.log_artifacts(run_id, tmp, ARTIFACT_DIR)


def installed() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


def launch(logdir: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 6006) -> int:
    """Run TensorBoard on `logdir` until it stops (Ctrl-C); its exit status."""
    if not installed():
        raise InvalidInput(
            "TensorBoard is not installed in this Python (pip install tensorboard); the event "
            f"files are in {str(logdir)!r} for a TensorBoard elsewhere",
            field="tensorboard",
        )
    command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir)]
    command += ["--host", host, "--port", str(port)]
    process = subprocess.Popen(command)
    try:
        return process.wait()
    except KeyboardInterrupt:
        process.terminate()
        return process.wait()
