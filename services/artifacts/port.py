"""The ArtifactStore port: put and get files under keys relative to a store root."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

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


@runtime_checkable
class PresigningStore(Protocol):
    """A store whose clients can move bytes to and from it directly, with URLs it signs.

    The gateway checks `isinstance(store, PresigningStore)`: when it holds, it hands the
    SDK a URL instead of relaying the bytes, so large artifacts never pass through it.
    A URL is a bearer token for one object until it expires: give it to one caller only.
    """

    def presign_put(self, key: str, expires_s: int) -> str:
        """A URL that accepts one HTTP PUT of the whole object (up to 5 GiB on S3)."""
        ...

    def presign_get(self, key: str, expires_s: int) -> str:
        """A URL that answers HTTP GET with the object's bytes."""
        ...

    def size_of(self, key: str) -> int:
        """The stored object's size; NotFound when absent. Lets the gateway confirm that an
        upload the client reports really arrived before it records the artifact."""
        ...


_NOT = r"/\\\x00-\x1f:"
"""What no path segment holds: slash, backslash, control characters, colon."""
_SEGMENT = rf"(?:[^{_NOT}.\s][^{_NOT}]*|\.[^{_NOT}.][^{_NOT}]*|\.\.[^{_NOT}]+)"
ARTIFACT_PATH = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
"""A path `safe_relpath` takes as naming a file, as the API document states it: relative
segments, none `.` or `..`, no control character, backslash or colon (a subset: it also
tidies `a//b`)."""


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
