"""Turn a model URI into a local directory holding the model.

Accepted: a local path, `file:` URIs, `runs:/<run_id>/<path>`, and registry URIs
`models:/<name>/<version>`, `models:/<name>@<alias>`, `models:/<name>/latest`,
`models:/<name>/<stage>`.

Local paths need nothing else. `runs:/` and `models:/` URIs are looked up in an
`ArtifactSource` the caller passes: a `ledgerflow.Client` at the fluent edge, the
model server's own backend in serving. The model format never picks one itself.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Protocol
from urllib.parse import ParseResult, unquote, urlparse

from ledgerflow.events.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    from ledgerflow.events.entities import ModelVersion, Run


class ArtifactSource(Protocol):
    """Where `runs:/` and `models:/` URIs are looked up (a `ledgerflow.Client` is one)."""

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str: ...

    def resolve_model_version(self, model_uri: str) -> ModelVersion: ...

    def get_run(self, run_id: str) -> Run: ...


def _parsed(uri: str) -> ParseResult:
    try:
        return urlparse(uri)
    except ValueError as e:  # "Invalid IPv6 URL" for a stray '[' in the host
        raise InvalidInput(f"model URI {uri!r} is not a valid URI: {e}", field="uri") from None


def _file_path(uri: str) -> Path:
    if uri.startswith("file://"):
        parsed = _parsed(uri)
        if parsed.netloc not in ("", "localhost"):
            raise InvalidInput(f"{uri!r} names another host; only local file: URIs are supported")
        return Path(unquote(parsed.path))
    return Path(unquote(uri[len("file:") :]))


def _download_run_artifact(
    source: ArtifactSource, run_id: str, path: str, dst: Path | None
) -> Path:
    target = dst if dst is not None else Path(tempfile.mkdtemp(prefix="ledgerflow-model-"))
    return Path(source.download_artifacts(run_id, path, target))


def _parse_runs_uri(uri: str) -> tuple[str, str]:
    rest = uri[len("runs:/") :].strip("/")
    run_id, _, path = rest.partition("/")
    if not run_id:
        raise InvalidInput(f"model URI {uri!r} must look like runs:/<run_id>/<path>", field="uri")
    return run_id, path


def _resolve_version(source: ArtifactSource, uri: str, dst: Path | None) -> Path:
    mv = source.resolve_model_version(uri)  # /<version>, @<alias>, /latest, /<stage>
    files = mv.source
    local = _local(files)
    if local is not None and _exists(local, uri):
        return local
    if files.startswith("runs:/"):
        return resolve(files, dst, source=source)
    if mv.run_id:
        artifact_uri = source.get_run(mv.run_id).info.artifact_uri.rstrip("/")
        if files.startswith(artifact_uri + "/"):
            return _download_run_artifact(source, mv.run_id, files[len(artifact_uri) + 1 :], dst)
    raise NotFound(
        f"the files of {uri!r} (model {mv.name!r} version {mv.version}) are not at "
        f"{files!r} any more",
        kind="model_version",
        key=uri,
    )


def _local(uri: str) -> Path | None:
    if uri.startswith("file:"):
        return _file_path(uri)
    scheme = _parsed(uri).scheme
    if scheme and len(scheme) > 1:  # a one-letter scheme is a Windows drive
        return None
    try:
        return Path(uri).expanduser()
    except (RuntimeError, ValueError):  # ~name of no user here; ValueError: ~a NUL or surrogate
        raise InvalidInput(
            f"model URI {uri!r} starts with the home folder of an unknown user", field="uri"
        ) from None


def _exists(path: Path, uri: str) -> bool:
    try:
        return path.exists()
    except OSError as e:  # a name too long for the file system, say
        raise InvalidInput(
            f"model URI {uri!r} is not a usable path: {e.strerror}", field="uri"
        ) from None


def _needs_source(uri: str, source: ArtifactSource | None) -> ArtifactSource:
    if source is None:
        raise InvalidInput(
            f"model URI {uri!r} names a run or a registered model: resolving it needs a "
            "tracking backend (pass source=ledgerflow.Client(), or load it with "
            "ledgerflow.pyfunc.load_model or the flavor's load_model)",
            field="uri",
        )
    return source


def resolve(
    uri: str | os.PathLike[str],
    dst_path: str | os.PathLike[str] | None = None,
    *,
    source: ArtifactSource | None = None,
) -> Path:
    """A local directory holding the model at `uri` (downloaded from `source` into
    `dst_path`, or a fresh temporary folder, when it is not local)."""
    text = os.fspath(uri)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("model URI must be a non-empty string or path", field="uri")
    dst = Path(dst_path) if dst_path is not None else None
    if text.startswith("runs:/"):
        run_id, path = _parse_runs_uri(text)
        return _download_run_artifact(_needs_source(text, source), run_id, path, dst)
    if text.startswith("models:/"):
        return _resolve_version(_needs_source(text, source), text, dst)
    local = _local(text)
    if local is None:
        raise InvalidInput(
            f"model URI {text!r} is not supported; use a local path, file:, runs:/ or models:/",
            field="uri",
        )
    if not _exists(local, text):
        raise NotFound(f"no model at {text!r}: the path does not exist", kind="model", key=text)
    return local.resolve()
