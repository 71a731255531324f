"""The manifest of a bundle: what it came from, what it takes and gives, what it holds.

Written as `manifest.json` at the bundle's root. Every other file is listed with
its size and sha256, so whoever deploys a bundle can check it arrived whole.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"


@dataclass(frozen=True)
class TensorInfo:
    """One input or output: its name, numpy dtype and shape (-1 where any size goes)."""

    name: str
    dtype: str
    shape: tuple[int, ...]


@dataclass(frozen=True)
class FileEntry:
    path: str
    size: int
    sha256: str


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_files(root: Path) -> list[FileEntry]:
    """Every file under `root` except the manifest itself, in path order."""
    return [
        FileEntry(p.relative_to(root).as_posix(), p.stat().st_size, sha256_of(p))
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).as_posix() != MANIFEST_FILE
    ]


def build_manifest(
    root: Path,
    *,
    bundle_id: str,
    target: str,
    source: dict[str, Any],
    runtime: dict[str, str],
    inputs: list[TensorInfo],
    outputs: list[TensorInfo],
    parity: dict[str, Any],
    entrypoint: str,
) -> dict[str, Any]:
    """The manifest for the files now under `root` (call it last, after every file is
    written), also saved there as manifest.json."""
    files = list_files(root)
    manifest = {
        "format_version": FORMAT_VERSION,
        "bundle_id": bundle_id,
        "target": target,
        "source": source,
        "runtime": {**runtime, "python": platform.python_version()},
        "entrypoint": entrypoint,
        "inputs": [_tensor(t) for t in inputs],
        "outputs": [_tensor(t) for t in outputs],
        "files": [asdict(f) for f in files],
        "size_bytes": sum(f.size for f in files),
        "parity": parity,
    }
    (root / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return manifest


def _tensor(t: TensorInfo) -> dict[str, Any]:
    return {"name": t.name, "dtype": t.dtype, "shape": list(t.shape)}


def verify(root: Path) -> list[str]:
    """What differs between the files under `root` and its manifest (empty when whole)."""
    manifest = json.loads((root / MANIFEST_FILE).read_text())
    listed = {f["path"]: f for f in manifest["files"]}
    found = {f.path: f for f in list_files(root)}
    problems = [f"missing {p}" for p in sorted(set(listed) - set(found))]
    problems += [f"unlisted {p}" for p in sorted(set(found) - set(listed))]
    problems += [
        f"changed {p}"
        for p in sorted(set(listed) & set(found))
        if listed[p]["sha256"] != found[p].sha256 or listed[p]["size"] != found[p].size
    ]
    return problems
