"""Where a model version's files are, as MLflow's client names them and as Ledgerflow does.

MLflow's client logs artifacts through the gateway's artifact proxy, so the sources it
registers are `mlflow-artifacts:/<store key>` (what `register_model` makes of a
`runs:/` URI) or `runs:/<run_id>/<path>`. Ledgerflow's own versions keep `source` as
the artifact store's URI of the files (a path or `s3://...`), which bundles and
deployments open directly; so a source the client gives is stored as that URI, and
answered back in the proxy's form, which for `mlflow-artifacts:/` sources is exactly
what the client sent. A version's download URI is the proxy's form too, so a client on
another machine downloads through the gateway; any other source is answered as stored.

MLflow 3's `models:/<model_id>` sources name a logged model: they are stored as the store
URI of its files (`<exp>/models/<model_id>/artifacts`), with the run that logged it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ledgerflow.events.entities import RunInfo
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.events.named_resources import MODELS_SCHEME, RUNS_SCHEME
from ledgerflow.services.artifacts import ArtifactStore
from ledgerflow.services.artifacts.port import safe_relpath
from ledgerflow.services.bootstrap import Backend
from ledgerflow.services.gateway.mlflow_api.messages import (
    PROXY_SCHEME,
    proxy_uri,
    run_artifact_key,
)

MAX_MODELS_URI_HOPS = 10
_PROXY_LITERAL = re.compile(r"'mlflow-artifacts:/+([^']*)'")


@dataclass(frozen=True)
class Source:
    """A source as Ledgerflow stores it, and the run its files belong to."""

    uri: str
    run_id: str | None


def stored_source(
    backend: Backend, source: str, run_id: str | None, model_id: str | None = None
) -> Source:
    """The source the client sent, as Ledgerflow stores it.

    `mlflow-artifacts:/<exp>/<run>/artifacts/<path>` and `runs:/<run>/<path>` become the
    store URI of those files, and must lie under the artifacts of the run `run_id` names
    (filled in from the source when the client sent none), as MLflow's server requires:
    registering files is reading them, and the command's checks read the run's
    experiment. Any other source is stored as sent, as the native API does."""
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("Missing value for required parameter 'source'", field="source")
    if source.startswith(MODELS_SCHEME) and _logged_model_id(source):
        return logged_model_source(backend, source, model_id)
    if model_id and not source.startswith((PROXY_SCHEME, RUNS_SCHEME)):
        return logged_model_source(backend, source, model_id)
    if source.startswith(PROXY_SCHEME):
        key = _proxy_key(source)
        return _in_run(backend, source, key, run_id)
    if source.startswith(RUNS_SCHEME):
        rest = source[len(RUNS_SCHEME) :].lstrip("/")
        source_run, _, path = rest.partition("/")
        if not source_run:
            raise InvalidInput(
                f"source {source!r} must look like runs:/<run_id>/<path>", field="source"
            )
        info = _run(backend, source_run, source)
        _same_run(source, info.run_id, run_id)
        rel = safe_relpath(path, "source")
        key = run_artifact_key(info) + (f"/{rel}" if rel else "")
        return Source(backend.artifacts.uri(key), info.run_id)
    return Source(source, run_id or None)


def logged_model_source(
    backend: Backend, source: str, model_id: str | None, path: str = ""
) -> Source:
    """A source naming an MLflow 3 logged model (`models:/<model_id>`, a `model_id`, or a
    proxy URI under `<exp>/models/<model_id>/artifacts`): the store URI of its files (of
    `path` under them), and the run that logged it."""
    named = model_id or _logged_model_id(source) or ""
    if not named:
        raise InvalidInput(f"source {source!r} names no logged model", field="source")
    model = backend.logged_models.queries.get(named)
    rel = safe_relpath(path, "source") if path else ""
    key = model.artifact_key + (f"/{rel}" if rel else "")
    return Source(backend.artifacts.uri(key), model.source_run_id)


def answered_source(artifacts: ArtifactStore, stored: str) -> str:
    """A stored source as the MLflow API answers it: the proxy's URI for files in the
    store (what the client sent, for `mlflow-artifacts:/` sources), else as stored."""
    key = store_key(artifacts, stored)
    return stored if key is None else proxy_uri(key)


def download_uri(backend: Backend, stored: str) -> str:
    """Where MLflow's client downloads a version's files from: through the proxy for
    files in the store; the version a `models:/<name>/<ref>` source names, followed; any
    other source as stored (the client opens it itself)."""
    for _ in range(MAX_MODELS_URI_HOPS):
        if not stored.startswith(MODELS_SCHEME) or _logged_model_id(stored):
            break
        stored = backend.registry.resolve_models_uri(stored).source
    return answered_source(backend.artifacts, stored)


def in_filter(artifacts: ArtifactStore, filter_string: str) -> str:
    """A search filter with each quoted `mlflow-artifacts:/<key>` (or a LIKE pattern that
    starts so) as the store URI it stands for, so `source_path = '<what the client sent>'`
    finds the version stored with the store's URI."""

    def stored(m: re.Match[str]) -> str:
        return "'" + artifacts.uri(safe_relpath(m[1], "filter")) + "'"

    return _PROXY_LITERAL.sub(stored, filter_string)


def store_key(artifacts: ArtifactStore, uri: str) -> str | None:
    """The store key of a URI inside the store (None when outside it)."""
    root = artifacts.uri("").rstrip("/")
    for prefix in (root + "/", "file://" + root + "/"):
        if uri.startswith(prefix):
            rest = uri[len(prefix) :].strip("/")
            return rest or None
    return None


def _logged_model_id(models_uri: str) -> str | None:
    """`models:/m-abc` (a logged model: one segment, no '@') -> "m-abc"."""
    rest = models_uri[len(MODELS_SCHEME) :].strip("/")
    if rest and "/" not in rest and "@" not in rest:
        return rest
    return None


def _proxy_key(source: str) -> str:
    rest = source[len(PROXY_SCHEME) :]
    if rest.startswith("//"):  # mlflow-artifacts://host:port/<key>: the host is ours
        rest = rest[2:].partition("/")[2]
    key = safe_relpath(rest.lstrip("/"), "source")
    if not key:
        raise InvalidInput(f"source {source!r} names no files", field="source")
    return key


def _in_run(backend: Backend, source: str, key: str, run_id: str | None) -> Source:
    """A proxy key under a run's artifacts (`<exp>/<run>/artifacts[/...]`)."""
    parts = key.split("/")
    if len(parts) >= 3 and parts[1] == "models":
        if parts[3:4] != ["artifacts"]:
            raise InvalidInput(
                f"source {source!r} must lie under a logged model's artifacts "
                "(mlflow-artifacts:/<experiment_id>/models/<model_id>/artifacts/<path>)",
                field="source",
            )
        found = logged_model_source(backend, source, parts[2], "/".join(parts[4:]))
        if found.run_id is not None:
            _same_run(source, found.run_id, run_id)
        return found
    if len(parts) < 3 or parts[2] != "artifacts":
        raise InvalidInput(
            f"source {source!r} must lie under a run's artifacts "
            "(mlflow-artifacts:/<experiment_id>/<run_id>/artifacts/<path>)",
            field="source",
        )
    info = _run(backend, parts[1], source)
    if info.experiment_id != parts[0]:
        raise InvalidInput(
            f"source {source!r} names experiment {parts[0]}, but run {info.run_id} is in "
            f"experiment {info.experiment_id}",
            field="source",
        )
    _same_run(source, info.run_id, run_id)
    return Source(backend.artifacts.uri(key), info.run_id)


def _run(backend: Backend, run_id: str, source: str) -> RunInfo:
    info = backend.queries.find_run_info(run_id)
    if info is None:
        raise NotFound(f"source {source!r} names run {run_id}, which does not exist", kind="run")
    return info


def _same_run(source: str, source_run: str, run_id: str | None) -> None:
    if run_id and run_id != source_run:
        raise InvalidInput(
            f"source {source!r} is not under the artifacts of run {run_id}: the run_id "
            "request parameter must identify the run that contains the source",
            field="run_id",
        )
