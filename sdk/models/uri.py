"""Turn a model URI into a local directory holding the model.

Accepted: a local path, `file:` URIs, `runs:/<run_id>/<path>`, and registry URIs
`models:/<name>/<version>`, `models:/<name>@<alias>`, `models:/<name>/latest`,
`models:/<name>/<stage>`.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from ledgerflow.events.errors import InvalidInput, NotFound


def _file_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parsed = urlparse(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"{uri!r} names another host; only local file: URIs are supported")
        return Path(unquote(parsed.path))
    return Path(unquote(uri[len("file:") :]))


def _download_run_artifact(run_id: str, path: str, dst: Path | None) -> Path:
    from ledgerflow.client import Client

    target = dst if dst is not None else Path(tempfile.mkdtemp(prefix="ledgerflow-model-"))
    return Path(Client().download_artifacts(run_id, path, target))


def _parse_runs_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("runs:/") :].strip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidInput(f"model URI {uri!r} must look like runs:/<run_id>/<path>", field="uri")
    return run_id, path


def _version_for(uri: str) -> Any:
    """The ModelVersion a models:/ URI names (/<version>, @<alias>, /latest, /<stage>)."""
    from ledgerflow.client import Client

    return Client().resolve_model_version(uri)


def _resolve_version(uri: str, dst: Path | None) -> Path:
    from ledgerflow.client import Client

    mv = _version_for(uri)
    source = Client().get_model_version_download_uri(mv.name, mv.version)
    local = _local(source)
    if local is not None and local.exists():
        return local
    if source.startswith("runs:/"):
        return resolve(source, dst)
    if mv.run_id:
        artifact_uri = Client().get_run(mv.run_id).info.artifact_uri.rstrip("/")
        if source.startswith(artifact_uri + "/"):
            return _download_run_artifact(mv.run_id, source[len(artifact_uri) + 1 :], dst)
    raise NotFound(
        f"the files of {uri!r} (model {mv.name!r} version {mv.version}) are not at "
        f"{source!r} any more",
        kind="model_version",
        key=uri,
    )


def _local(uri: str) -> Path | None:
    if uri.startswith("file:"):
        return _file_path(uri)
    scheme = urlparse(uri).scheme
    if scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    return Path(uri).expanduser()


def resolve(uri: str | os.PathLike[str], dst_path: str | os.PathLike[str] | None = None) -> Path:
    """A local directory holding the model at `uri` (downloaded into `dst_path` or a fresh
    temporary folder when it is not local)."""
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("model URI must be a non-empty string or path", field="uri")
    dst = Path(dst_path) if dst_path is not None else None
    if text.startswith("runs:/"):
        run_id, path = _parse_runs_uri(text)
        return _download_run_artifact(run_id, path, dst)
    if text.startswith("models:/"):
        return _resolve_version(text, dst)
    local = _local(text)
    if local is None:
        raise InvalidInput(
            f"model URI {text!r} is not supported; use a local path, file:, runs:/ or models:/",
            field="uri",
        )
    if not local.exists():
        raise NotFound(f"no model at {text!r}: the path does not exist", kind="model", key=text)
    return local.resolve()
