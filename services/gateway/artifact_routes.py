"""Run artifacts: list them, and move their bytes.

Bytes take one of two roads. A store that can presign (S3, MinIO) hands out
URLs the client uploads to and downloads from directly, so large files never
pass through the gateway. Any other store (the local folder) streams through
the gateway's own `content` endpoints. Either way an upload becomes visible
only when the client commits it, which appends the `run.artifact_logged`
events for all its files at once.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.permissions import Level
from ledgerflow.services.artifacts import ArtifactStore, safe_relpath
from ledgerflow.services.artifacts.port import ARTIFACT_PATH, PresigningStore
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.auth import requires
from ledgerflow.services.gateway.deps import ActorDep, BackendDep, FreshDep
from ledgerflow.services.gateway.schemas import (
    ArtifactCommit,
    ArtifactPaths,
    FileInfoOut,
    StoredFileOut,
    TransferUrl,
    TransferUrls,
)

router = APIRouter(prefix="/runs/{run_id}/artifacts", tags=["artifacts"])
_READ = requires("run", "run_id", Level.READ)
_EDIT = requires("run", "run_id", Level.EDIT)
PRESIGN_EXPIRES_S = 3600
_Path = Annotated[str, PathParam(json_schema_extra={"pattern": ARTIFACT_PATH})]


def _presigner(store: ArtifactStore) -> PresigningStore | None:
    return store if isinstance(store, PresigningStore) else None


def _rel(path: str) -> str:
    rel = safe_relpath(path)
    if not rel:
        raise InvalidInput("artifact path must name a file", field="path")
    return rel


def _content_path(request: Request, run_id: str, rel: str) -> str:
    """The gateway-relative URL of a file's content (the streaming fallback)."""
    return request.url_for("download_artifact", run_id=run_id, path=quote(rel)).path


@router.get("", summary="List artifacts directly under a folder of the run", dependencies=[_READ])
def list_artifacts(run_id: str, backend: FreshDep, path: str | None = None) -> list[FileInfoOut]:
    backend.queries.get_run_info(run_id)
    return [FileInfoOut.model_validate(f) for f in backend.queries.list_artifacts(run_id, path)]


@router.get(
    "/entries",
    summary="Every artifact file of the run with its size and sha256",
    dependencies=[_READ],
)
def artifact_entries(run_id: str, backend: FreshDep) -> list[StoredFileOut]:
    backend.queries.get_run_info(run_id)
    return [
        StoredFileOut(path=p, size=size, sha256=sha)
        for p, (size, sha) in sorted(backend.queries.artifact_entries(run_id).items())
    ]


@router.post(
    "/upload-urls",
    summary="Where to upload files: presigned store URLs, or the gateway's content endpoint",
    dependencies=[_EDIT],
)
def upload_urls(
    run_id: str, body: ArtifactPaths, request: Request, backend: BackendDep
) -> TransferUrls:
    run = backend.tracking.active_run_info(run_id)
    signer = _presigner(backend.artifacts)
    files = []
    for path in body.paths:
        rel = _rel(path)
        if signer is not None:
            key = backend.tracking.artifact_key(run, rel)
            url, presigned = signer.presign_put(key, PRESIGN_EXPIRES_S), True
        else:
            url, presigned = _content_path(request, run_id, rel), False
        files.append(TransferUrl(path=rel, url=url, presigned=presigned))
    return TransferUrls(files=files)


@router.put(
    "/content/{path:path}",
    summary="Upload one file's bytes through the gateway (stores it; commit to record it)",
    openapi_extra={
        "requestBody": {
            "content": {"application/octet-stream": {}},
            "required": False,  # no body: an empty file, as a zero-byte one is
            "description": "the file's bytes",
        }
    },
    dependencies=[_EDIT],
)
async def upload_artifact(run_id: str, path: _Path, request: Request) -> StoredFileOut:
    backend: Backend = request.app.state.backend
    rel = _rel(path)
    with tempfile.NamedTemporaryFile(prefix="ledgerflow-upload-") as tmp:
        async for chunk in request.stream():
            tmp.write(chunk)
        tmp.flush()

        def store() -> StoredFileOut:
            run = backend.tracking.active_run_info(run_id)
            stored = backend.artifacts.put_file(
                backend.tracking.artifact_key(run, rel), Path(tmp.name)
            )
            return StoredFileOut(path=rel, size=stored.size, sha256=stored.sha256)

        return await run_in_threadpool(store)


@router.post(
    "/commit",
    status_code=204,
    summary="Record uploaded files on the run",
    dependencies=[_EDIT],
)
def commit_artifacts(
    run_id: str, body: ArtifactCommit, backend: BackendDep, actor: ActorDep
) -> None:
    backend.tracking.record_artifacts(
        run_id, [(f.path, f.size, f.sha256) for f in body.files], actor=actor
    )


@router.post(
    "/download-urls",
    summary="Where to download files: presigned store URLs, or the gateway's content endpoint",
    dependencies=[_READ],
)
def download_urls(
    run_id: str, body: ArtifactPaths, request: Request, backend: FreshDep
) -> TransferUrls:
    run = backend.queries.get_run_info(run_id)
    entries = backend.queries.artifact_entries(run_id)
    signer = _presigner(backend.artifacts)
    files = []
    for path in body.paths:
        rel = _rel(path)
        if rel not in entries:
            raise NotFound(f"run {run_id} has no artifact {rel!r}", kind="artifact", key=rel)
        if signer is not None:
            key = backend.tracking.artifact_key(run, rel)
            url, presigned = signer.presign_get(key, PRESIGN_EXPIRES_S), True
        else:
            url, presigned = _content_path(request, run_id, rel), False
        files.append(TransferUrl(path=rel, url=url, presigned=presigned))
    return TransferUrls(files=files)


@router.get(
    "/content/{path:path}",
    name="download_artifact",
    summary="Download one file's bytes through the gateway",
    response_class=FileResponse,
    dependencies=[_READ],
)
def download_artifact(run_id: str, path: _Path, backend: FreshDep) -> FileResponse:
    run = backend.queries.get_run_info(run_id)
    rel = _rel(path)
    if rel not in backend.queries.artifact_entries(run_id):
        raise NotFound(f"run {run_id} has no artifact {rel!r}", kind="artifact", key=rel)
    folder = tempfile.mkdtemp(prefix="ledgerflow-download-")
    try:
        local = backend.artifacts.get_file(
            backend.tracking.artifact_key(run, rel), Path(folder) / Path(rel).name
        )
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        local,
        media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
