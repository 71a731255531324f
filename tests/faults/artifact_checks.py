"""What must hold of the artifacts the load logged to the S3 store.

Every artifact whose `log_text` returned (an upload the store refused while it was cut
off is kept in the load's spool and sent again when the spool ships) is readable
through the gateway afterwards, with the bytes that were logged. An upload whose
outcome was left unknown may be there or not, but never with other bytes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import ledgerflow as lf
from ledgerflow.events.errors import LedgerflowError, NotFound
from tests.faults import load
from tests.faults.invariants import ops


def check_artifacts(journal: list[dict[str, Any]], gateway_url: str) -> tuple[list[str], int]:
    """Problems, and how many acknowledged artifacts were read back."""
    problems: list[str] = []
    client = lf.Client(gateway_url)
    read = 0
    with tempfile.TemporaryDirectory(prefix="faults-artifacts-") as folder:
        for e in [*ops(journal, "artifact"), *ops(journal, "artifact?")]:
            want = load.artifact(e["worker"], e["round"])
            dest = Path(folder) / e["run_id"]
            try:
                got = client.download_artifacts(e["run_id"], load.ARTIFACT, str(dest))
            except NotFound:
                if e["op"] == "artifact":
                    problems.append(f"acknowledged artifact of run {e['run_id']} is missing")
                continue
            except LedgerflowError as err:
                problems.append(f"artifact of run {e['run_id']} unreadable: {err}")
                continue
            text = Path(got).read_text()
            if text != want:
                problems.append(
                    f"artifact of run {e['run_id']}: {text[:60]!r}, logged {want[:60]!r}"
                )
            read += e["op"] == "artifact"
    return problems, read
