"""Uploading files as a run's artifacts through the gateway: ask where each file goes
(`upload-urls`), put the bytes there (a presigned object-store URL, or the gateway's own
content route), then commit them, which records all the files on the run at once, so a
failed upload records none. Sending it all again is harmless: the same paths are
overwritten and committed once more.

Used straight from `log_artifact(s)`, and by the shipper for files that waited in the
spool while the gateway could not be reached.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ledgerflow.remote.http import API, GatewayHTTP, segment
from ledgerflow.services.gateway.schemas import StoredFileOut, TransferUrls


def digest(source: Path | bytes) -> tuple[int, str]:
    """(size, sha256) of a file or of bytes."""
    if isinstance(source, bytes):
        return len(source), hashlib.sha256(source).hexdigest()
    h = hashlib.sha256()
    size = 0
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return size, h.hexdigest()


def upload(
    http: GatewayHTTP,
    run_id: str,
    files: Sequence[tuple[Path | bytes, str]],
    *,
    actor: str,
    attempts: int | None = None,
    timeout: float | None = None,
) -> None:
    """Upload (source, artifact path) pairs, paths already checked, under the run's
    artifact root and record them."""
    root = f"{API}/runs/{segment(run_id)}/artifacts"
    ask: dict[str, Any] = {"actor": actor, "idempotent": True, "attempts": attempts}
    urls = TransferUrls.model_validate(
        http.request(
            "POST",
            f"{root}/upload-urls",
            json={"paths": [dest for _, dest in files]},
            timeout=timeout,
            **ask,
        )
    )
    stored = []
    for (source, _), target in zip(files, urls.files, strict=True):
        answer = http.upload(target.url, source)
        if target.presigned:  # the store answers for itself; describe the file ourselves
            size, sha = digest(source)
            stored.append({"path": target.path, "size": size, "sha256": sha})
        else:
            stored.append(StoredFileOut.model_validate(answer).model_dump())
    http.request("POST", f"{root}/commit", json={"files": stored}, timeout=timeout, **ask)
