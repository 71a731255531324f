"""Artifact storage: the ArtifactStore port and its adapters."""

from ledgerflow.services.artifacts.local import LocalArtifactStore
from ledgerflow.services.artifacts.port import ArtifactStore, StoredFile, safe_relpath

__all__ = ["ArtifactStore", "LocalArtifactStore", "StoredFile", "safe_relpath"]
