"""The ArtifactStore port: put and get files under keys relative to a store root."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ledgerflow.events.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class StoredFile:
    key: str
    size: int
    sha256: str


class ArtifactStore(Protocol):
    def uri(self, key: str) -> str:
        """Where `key` lives, as a URI a user can open (a path, s3://...)."""
        ...

    def put_file(self, key: str, source: Path) -> StoredFile:
        """Copy a local file to `key`; atomic: readers see the old or the new file, whole."""
        ...

    def put_bytes(self, key: str, data: bytes) -> StoredFile: ...

    def get_file(self, key: str, dest: Path) -> Path: ...

    def exists(self, key: str) -> bool: ...


def safe_relpath(path: str, what: str = "artifact path") -> str:
    """Normalize a user-given relative path, refusing anything that escapes its root."""
    if not isinstance(path, str):
        raise InvalidInput(f"{what} must be a string, got {type(path).__name__}", field=what)
    p = path.replace("\\", "/").strip()
    if p.startswith("/") or (len(p) > 1 and p[1] == ":"):
        raise InvalidInput(
            f"{what} {path!r} must be relative to the run's artifact root", field=what
        )
    parts = [seg for seg in p.split("/") if seg not in ("", ".")]
    if any(seg == ".." for seg in parts):
        raise InvalidInput(
            f"{what} {path!r} escapes the run's artifact root ('..' is not allowed)", field=what
        )
    if any("\x00" in seg for seg in parts):
        raise InvalidInput(f"{what} {path!r} contains a NUL character", field=what)
    return posixpath.join(*parts) if parts else ""


def local_source(path: str | Path, what: str = "local_path") -> Path:
    src = Path(path).expanduser()
    if not src.exists():
        raise InvalidInput(f"{what} {str(path)!r} does not exist", field=what)
    return src
