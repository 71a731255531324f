"""Artifact storage: the ArtifactStore port and its adapters.

The S3 adapter lives in `ledgerflow.services.artifacts.s3` and is imported only when
used, so the embedded install does not need `minio`.
"""

from ledgerflow.services.artifacts.local import LocalArtifactStore
from ledgerflow.services.artifacts.port import (
    ArtifactStore,
    PresigningStore,
    StoredFile,
    safe_relpath,
)

__all__ = ["ArtifactStore", "LocalArtifactStore", "PresigningStore", "StoredFile", "safe_relpath"]
