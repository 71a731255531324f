"""Model files in, bundle files out: the local folders a conversion task works on.

A model version's source is a folder (embedded mode) or a path inside its run's
artifacts (copied out of the artifact store first). A built bundle is stored in
the artifact store under `models/<name>/<version>/bundles/<target>-<id>/`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import unquote, urlparse

import yaml

from ledgerflow.events.entities import ModelVersion
from ledgerflow.events.errors import InvalidInput, NotFound
from ledgerflow.services.artifacts import ArtifactStore
from ledgerflow.services.artifacts.port import safe_relpath
from ledgerflow.services.tracking.service import TrackingService


def local_model_dir(mv: ModelVersion, tracking: TrackingService, work: Path) -> Path:
    """A local folder holding the version's model files (its MLmodel at the root)."""
    source = mv.source
    local: Path | None = None
    if source.startswith("file:"):
        local = Path(unquote(urlparse(source).path))
    elif len(urlparse(source).scheme) <= 1:  # a plain path (a one-letter scheme is a drive)
        local = Path(source).expanduser()
    if local is not None and (local / "MLmodel").is_file():
        return local
    if mv.run_id:
        run = tracking.queries.find_run_info(mv.run_id)
        root = run.artifact_uri.rstrip("/") if run is not None else None
        if root and source.startswith(root + "/"):
            return tracking.download_artifacts(mv.run_id, source[len(root) + 1 :], work)
    raise NotFound(
        f"the files of model {mv.name!r} version {mv.version} are not at {source!r}",
        kind="model_version",
        key=f"{mv.name}/{mv.version}",
    )


def flavors_of(model_dir: Path) -> list[str]:
    doc = yaml.safe_load((model_dir / "MLmodel").read_text()) or {}
    flavors = doc.get("flavors") or {}
    if not isinstance(flavors, dict):
        raise InvalidInput(f"{model_dir / 'MLmodel'} has no flavors mapping")
    return sorted(flavors)


def bundle_prefix(name: str, version: int, target: str, bundle_id: str) -> str:
    return f"models/{safe_relpath(name, 'model name')}/{version}/bundles/{target}-{bundle_id}"


def store_bundle(store: ArtifactStore, prefix: str, folder: Path) -> str:
    """Copy every file of the built bundle to the store; the URI of its root."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            store.put_file(f"{prefix}/{path.relative_to(folder).as_posix()}", path)
    return store.uri(prefix)


def fetch_bundle(store: ArtifactStore, prefix: str, files: list[str], dst: Path) -> Path:
    """Copy a stored bundle (its manifest and the files it lists) into `dst`."""
    dst.mkdir(parents=True, exist_ok=True)
    for rel in ["manifest.json", *files]:
        store.get_file(f"{prefix}/{rel}", dst / rel)
    return dst


def scratch() -> Path:
    return Path(tempfile.mkdtemp(prefix="ledgerflow-bundle-"))
