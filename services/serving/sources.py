"""An embedded backend as a `ModelSource`: where `ledgerflow server` finds the models,
runs and bundles the deployments it hosts name, in its own backend (not in whatever the
process environment points a default client at)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ledgerflow.events.entities import ModelVersion, Run
    from ledgerflow.services.bootstrap import Backend


class BackendSource:
    """Runs, registered models and bundles of `backend` (a `ModelSource`)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend

    def download_artifacts(
        self, run_id: str, path: str = "", dst_path: str | os.PathLike[str] | None = None
    ) -> str:
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="ledgerflow-"))
        return str(self._backend.tracking.download_artifacts(run_id, path, dst))

    def resolve_model_version(self, model_uri: str) -> ModelVersion:
        self._backend.refresh()
        return self._backend.registry.resolve_models_uri(model_uri)

    def get_run(self, run_id: str) -> Run:
        self._backend.refresh()
        return self._backend.queries.get_run(run_id)

    def download_bundle(self, bundle_id: str, dst_path: str | None = None) -> str:
        dst = Path(dst_path) if dst_path else Path(tempfile.mkdtemp(prefix="ledgerflow-bundle-"))
        self._backend.refresh()
        return str(self._backend.bundles.download(bundle_id, dst))
