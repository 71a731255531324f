"""Artifacts in a local folder (the embedded default)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from ledgerflow.events.errors import InvalidInput, NotFound, Unavailable
from ledgerflow.services.artifacts.port import StoredFile, safe_relpath

_CHUNK = 1 << 20


class LocalArtifactStore:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()

    def _path(self, key: str) -> Path:
        rel = safe_relpath(key, "artifact key")
        if not rel:
            raise InvalidInput("artifact key must name a file", field="artifact key")
        full = (self.root / rel).resolve()
        if not full.is_relative_to(self.root):  # a symlink inside the root pointing out
            raise InvalidInput(f"artifact key {key!r} resolves outside the artifact root")
        return full

    def uri(self, key: str) -> str:
        rel = safe_relpath(key, "artifact key")
        return str(self.root / rel) if rel else str(self.root)

    def put_file(self, key: str, source: Path) -> StoredFile:
        dest = self._path(key)
        try:
            with open(source, "rb") as src:
                return self._write(key, dest, iter(lambda: src.read(_CHUNK), b""))
        except FileNotFoundError:
            raise InvalidInput(f"local file {str(source)!r} does not exist") from None
        except IsADirectoryError:
            raise InvalidInput(
                f"{str(source)!r} is a folder; use log_artifacts for folders"
            ) from None

    def put_bytes(self, key: str, data: bytes) -> StoredFile:
        return self._write(key, self._path(key), iter([data]))

    def _write(self, key: str, dest: Path, chunks: object) -> StoredFile:
        digest = hashlib.sha256()
        size = 0
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=".part")
        except OSError as e:
            raise Unavailable(f"cannot write artifact {key!r} under {self.root}: {e}") from e
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:  # type: ignore[attr-defined]
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredFile(key, size, digest.hexdigest())

    def get_file(self, key: str, dest: Path) -> Path:
        src = self._path(key)
        if not src.is_file():
            raise NotFound(f"artifact {key!r} does not exist", kind="artifact", key=key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()
