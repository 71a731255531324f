"""MLflow's artifact proxy (`/api/2.0/mlflow-artifacts/...`) and `artifacts/list`.

MLflow's client reads and writes the files of an `mlflow-artifacts:/<key>` URI through
the tracking server. Here a key names a run's files (`<exp>/<run>/artifacts/<path>`,
the run's `artifact_uri` in `messages.run_info`) or a logged model's
(`<exp>/models/<model_id>/artifacts/<path>`). An upload is streamed to the artifact
store and then recorded as an event on its run or model (`run.artifact_logged`,
`logged_model.artifact_logged`), as the native API records it; listings and downloads
come from what is recorded, so they show what the views show. Other keys are not served
(501), nor are multipart uploads (the client then uploads in one PUT) or deletions (no
event removes an artifact).
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from ledgerflow.events.commands import on
from ledgerflow.events.entities import FileInfo
from ledgerflow.events.errors import InvalidInput, LedgerflowError, NotFound, PermissionDenied
from ledgerflow.events.permissions import Level
from ledgerflow.services.artifacts import safe_relpath
from ledgerflow.services.gateway import denials
from ledgerflow.services.gateway.auth import PrincipalDep, checked
from ledgerflow.services.gateway.deps import BackendDep
from ledgerflow.services.gateway.mlflow_api import messages
from ledgerflow.services.gateway.mlflow_api.endpoints import (
    Call,
    Endpoints,
    Message,
    NotImplementedHere,
    error_response,
    json_response,
)
from ledgerflow.services.gateway.mlflow_api.runs import RunRef, run_info_of
from ledgerflow.services.gateway.route_table import FixedPaths
from ledgerflow.services.projector.queries import directory

api = Endpoints("mlflow artifacts")
"""The proxy, under `ARTIFACT_PREFIXES`."""
listing = Endpoints("mlflow artifact listing")
"""`artifacts/list`, under MLflow's tracking prefixes."""

ARTIFACT_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
READ_RUN = on("run", "run_id", Level.READ)
EDIT_RUN = on("run", "run_id", Level.EDIT)
READ_EXPERIMENT = on("experiment", "experiment_id", Level.READ)
EDIT_EXPERIMENT = on("experiment", "experiment_id", Level.EDIT)
NEEDS_READ = "READ on the run (or the logged model's experiment) the path names"
NEEDS_EDIT = "EDIT on the run (or the logged model's experiment) the path names"
MULTIPART_UNSUPPORTED = "Multipart upload is not supported for the current artifact repository"
"""MLflow's client falls back to one PUT on a 501 whose message starts so."""


@dataclass(frozen=True)
class Target:
    """What an artifact key names: a run's or a logged model's file or folder `rel`."""

    kind: Literal["run", "model"]
    experiment_id: str
    owner: str  # run id or model id
    rel: str

    def check(self, call: Call, *, edit: bool) -> None:
        if self.kind == "run":
            call.check(EDIT_RUN if edit else READ_RUN, run_id=self.owner)
        else:
            need = EDIT_EXPERIMENT if edit else READ_EXPERIMENT
            call.check(need, experiment_id=self.experiment_id)

    def entries(self, call: Call) -> dict[str, tuple[int, str]]:
        """The recorded files of the run or model (NotFound when the key's experiment is
        not its own)."""
        backend = call.fresh()
        if self.kind == "run":
            if run_info_of(call, self.owner).experiment_id != self.experiment_id:
                raise _not_found(self)
            return backend.queries.artifact_entries(self.owner)
        model = backend.logged_models.queries.get(self.owner)
        if model.experiment_id != self.experiment_id:
            raise _not_found(self)
        return backend.logged_models.queries.artifact_entries(self.owner)

    def key(self, rel: str) -> str:
        if self.kind == "run":
            return f"{self.experiment_id}/{self.owner}/artifacts/{rel}"
        return f"{self.experiment_id}/models/{self.owner}/artifacts/{rel}"


def _not_found(target: Target) -> NotFound:
    what = "Run" if target.kind == "run" else "Logged model"
    return NotFound(
        f"{what} {target.owner} is not in experiment {target.experiment_id}",
        kind=target.kind,
        key=target.owner,
    )


def target_of(path: str | None) -> Target:
    """The run or logged model an artifact key names; 501 for any other key."""
    key = safe_relpath(path or "", "path")
    parts = key.split("/") if key else []
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        return Target("model", parts[0], parts[2], "/".join(parts[4:]))
    if len(parts) >= 3 and parts[2] == "artifacts":
        return Target("run", parts[0], parts[1], "/".join(parts[3:]))
    raise NotImplementedHere(
        f"artifact path {key!r} is outside every run's and logged model's artifact root: "
        "Ledgerflow's artifact proxy serves <experiment>/<run>/artifacts/... and "
        "<experiment>/models/<model_id>/artifacts/... only"
    )


def _listed(files: list[FileInfo], rel: str) -> list[dict[str, Any]]:
    """`files` (named from the root) as MLflow lists folder `rel`: named from it; a file
    lists nothing."""
    if rel and len(files) == 1 and files[0].path == rel and not files[0].is_dir:
        return []
    base = rel + "/" if rel else ""
    return [messages.file_info(FileInfo(f.path[len(base) :], f.is_dir, f.file_size)) for f in files]


# the proxy ------------------------------------------------------------------------------


class ListProxied(Message):
    path: str | None = None


@api.get("/artifacts", needs=NEEDS_READ)
def list_proxied(call: Call) -> dict[str, Any]:
    """A folder's files and subfolders, named from that folder."""
    target = target_of(call.parse(ListProxied).path)
    target.check(call, edit=False)
    entries = target.entries(call)
    files = _listed(directory(((p, s) for p, (s, _) in entries.items()), target.rel), target.rel)
    return {"files": files} if files else {}


@api.get("/artifacts/{path:path}", needs=NEEDS_READ)
def download(call: Call) -> Response:
    """One recorded file's bytes."""
    target = target_of(call.request.path_params["path"])
    target.check(call, edit=False)
    if target.rel not in target.entries(call):
        raise NotFound(
            f"no artifact at {call.request.path_params['path']!r}", kind="artifact", key=target.rel
        )
    return file_response(call, target.key(target.rel))


def file_response(call: Call, key: str) -> Response:
    """The stored file `key`, copied to a temporary folder removed once it is sent."""
    folder = tempfile.mkdtemp(prefix="ledgerflow-download-")
    try:
        local = call.backend.artifacts.get_file(key, Path(folder) / Path(key).name)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        local,
        media_type="application/octet-stream",
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )


@api.route("DELETE", "/artifacts/{path:path}", needs=NEEDS_EDIT)
def delete(call: Call) -> dict[str, Any]:
    target = target_of(call.request.path_params["path"])
    target.check(call, edit=True)
    raise NotImplementedHere(
        "deleting artifacts is not supported: Ledgerflow records every artifact as an "
        "event and no event removes one; log the file under another path instead"
    )


@api.post("/mpu/create/{path:path}", needs="any identity (answers 501)")
@api.post("/mpu/complete/{path:path}", needs="any identity (answers 501)")
@api.post("/mpu/abort/{path:path}", needs="any identity (answers 501)")
def multipart(call: Call) -> dict[str, Any]:
    raise NotImplementedHere(
        f"{MULTIPART_UNSUPPORTED}: Ledgerflow's artifact proxy takes each file in one "
        "PUT (server-info says multipart_uploads_enabled is false)"
    )


async def upload(request: Request, backend: BackendDep, principal: PrincipalDep) -> Response:
    """PUT a file's bytes: checked first, streamed to a temporary file (never held whole),
    put in the store, then recorded on its run or logged model."""
    call = Call(request, backend, principal, {})
    try:
        target = target_of(request.path_params["path"])
        if not target.rel:
            raise InvalidInput("an artifact upload must name a file", field="path")
        await run_in_threadpool(target.check, call, edit=True)
        await run_in_threadpool(target.entries, call)  # the run or model is there
        with tempfile.NamedTemporaryFile(prefix="ledgerflow-upload-") as tmp:
            async for chunk in request.stream():
                tmp.write(chunk)
            tmp.flush()
            await run_in_threadpool(_store, call, target, Path(tmp.name))
    except LedgerflowError as e:
        if isinstance(e, PermissionDenied) and backend.settings.auth:
            await run_in_threadpool(denials.forbidden, request, e)
        return error_response(e)
    return json_response({})


def _store(call: Call, target: Target, source: Path) -> None:
    backend = call.backend
    stored = backend.artifacts.put_file(target.key(target.rel), source)
    files = [(target.rel, stored.size, stored.sha256)]
    if target.kind == "run":
        backend.tracking.record_artifacts(target.owner, files, actor=call.actor)
    else:
        backend.logged_models.record_artifacts(target.owner, files, actor=call.actor)


def router(fixed: FixedPaths) -> APIRouter:
    """The proxy under MLflow's artifact prefixes, and `artifacts/list` under its tracking
    prefixes (fixed paths into `fixed`)."""
    made = api.serve_on(fixed, ARTIFACT_PREFIXES)
    for prefix in ARTIFACT_PREFIXES:
        made.add_api_route(
            prefix + "/artifacts/{path:path}",
            upload,
            methods=["PUT"],
            name=f"mlflow{prefix.split('/')[1]}:PUT /artifacts",
            include_in_schema=False,
            dependencies=[checked(NEEDS_EDIT)],
        )
    made.include_router(listing.serve_on(fixed))
    return made


# artifacts/list -------------------------------------------------------------------------


class ListArtifacts(RunRef):
    path: str | None = None
    page_token: str | None = None


@listing.get("/artifacts/list", needs="READ on the run")
def list_artifacts(call: Call) -> dict[str, Any]:
    """A folder of a run's files, named from the run's artifact root (one page: all)."""
    msg = call.parse(ListArtifacts)
    rid = msg.id
    call.check(READ_RUN, run_id=rid)
    info = run_info_of(call, rid)
    rel = safe_relpath(msg.path or "", "path")
    files = call.backend.queries.list_artifacts(rid, rel or None)
    if rel and len(files) == 1 and files[0].path == rel and not files[0].is_dir:
        files = []
    out: dict[str, Any] = {"root_uri": messages.proxy_uri(messages.run_artifact_key(info))}
    if files:
        out["files"] = [messages.file_info(f) for f in files]
    return out
