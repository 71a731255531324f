"""Check that a `torch.export` archive (`model.pt2`) can be loaded without running pickles.

`torch.export.load` unpickles the weights, constants and sample inputs it finds in the
archive with `weights_only=False`, so a crafted file runs code on load. When pickle is
refused (LEDGERFLOW_ALLOW_PICKLE=false) every record must be plain text or JSON, a raw
tensor buffer, or a stream torch's restricted `weights_only` unpickler accepts (tensors
and primitive containers only). The same rules as MLflow 3.17's check.
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import zipfile
from pathlib import Path
from typing import Any

from ledgerflow.events.errors import InvalidInput

# Short records `torch.export.save` writes as text and never unpickles.
_TEXT_RECORDS = frozenset(
    {"version", "archive_format", "archive_version", "byteorder", "serialization_id"}
)
# At most one newline (GLOBAL needs two) and ASCII only (STACK_GLOBAL's operands need more).
_TEXT_CONTENT = re.compile(r"[A-Za-z0-9._-]{1,64}\n?")
# Configs saying whether a weight / constant record is unpickled or read as raw bytes.
_PAYLOAD_CONFIG = re.compile(r"(?:^|/)data/(?:weights|constants)/[^/]+_config\.json$")
_RAW_TENSOR_PREFIXES = ("weight_", "tensor_")
_STRING_OPS = frozenset(
    {
        "STRING",
        "BINSTRING",
        "SHORT_BINSTRING",
        "UNICODE",
        "SHORT_BINUNICODE",
        "BINUNICODE",
        "BINUNICODE8",
    }
)
_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})


def _refused(record: str) -> InvalidInput:
    return InvalidInput(
        f"loading this pt2 model refused: LEDGERFLOW_ALLOW_PICKLE=false and record {record!r} "
        "of the archive is not a pickle-free payload (only tensors and primitive containers "
        "are). Re-save the model with ledgerflow.pytorch.save_model(..., "
        "serialization_format='pt2'), or set LEDGERFLOW_ALLOW_PICKLE=true if you trust the file."
    )


def _json(content: bytes) -> tuple[bool, Any]:
    try:
        return True, json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False, None


def _raw_tensor_records(configs: dict[str, bytes]) -> set[str]:
    """Records the archive loader reads as raw bytes (`use_pickle: false`), never unpickled."""
    raw: set[str] = set()
    pickled: set[str] = set()
    for name, content in configs.items():
        ok, doc = _json(content)
        if not ok or not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
            continue
        folder = name.rsplit("/", 1)[0]
        for entry in doc["config"].values():
            path_name = entry.get("path_name") if isinstance(entry, dict) else None
            if not isinstance(path_name, str) or "/" in path_name:
                continue
            record = f"{folder}/{path_name}"
            if entry.get("use_pickle") is False and path_name.startswith(_RAW_TENSOR_PREFIXES):
                raw.add(record)
            else:
                pickled.add(record)
    return raw - pickled


def _pickle_globals(data: bytes) -> set[str]:
    """The `module.name` globals a pickle stream references, found without unpickling it."""
    found: set[str] = set()
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL":
            module, name = str(arg).split(" ", 1)
            found.add(f"{module}.{name}")
        elif opcode.name == "STACK_GLOBAL":
            if len(strings) < 2:
                raise ValueError("STACK_GLOBAL operands are not string literals")
            found.add(f"{strings[-2]}.{strings[-1]}")
            strings = []
        elif opcode.name in _STRING_OPS:
            strings.append(str(arg))
        elif opcode.name not in _MEMO_OPS:
            strings = []
    return found


def _user_safe_globals(torch: Any) -> set[str]:
    """Globals added with `torch.serialization.add_safe_globals`, named as torch keys them."""
    names: set[str] = set()
    for entry in torch.serialization.get_safe_globals():
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], str):
            names.add(entry[1])
        else:
            names.add(f"{entry.__module__}.{entry.__qualname__}")
    return names


def _uses_user_safe_globals(content: bytes, user_globals: set[str]) -> bool:
    # The weights_only unpickler honours user-registered globals, whose reducers a crafted
    # record could invoke during the check itself: inspect the streams statically first.
    with zipfile.ZipFile(io.BytesIO(content)) as checkpoint:
        members = [n for n in checkpoint.namelist() if n.rsplit("/", 1)[-1] == "data.pkl"]
        if not members:
            return True
        return any(_pickle_globals(checkpoint.read(m)) & user_globals for m in members)


def _is_pickle_free(torch: Any, name: str, content: bytes, user_globals: set[str]) -> bool:
    if name.rsplit("/", 1)[-1] in _TEXT_RECORDS and _TEXT_CONTENT.fullmatch(
        content.decode("ascii", errors="replace")
    ):
        return True
    if _json(content)[0]:
        return True
    try:
        if _uses_user_safe_globals(content, user_globals):
            return False
        torch.load(io.BytesIO(content), map_location="cpu", weights_only=True)
    except Exception:
        return False
    return True


def _major_minor(version: str) -> tuple[int, int]:
    parts = re.findall(r"\d+", version.split("+")[0])
    return (int(parts[0]), int(parts[1])) if len(parts) >= 2 else (0, 0)


def check_pickle_free(model_file: Path) -> None:
    """Raise InvalidInput unless every record of the archive loads without running code."""
    import torch

    if _major_minor(torch.__version__) < (2, 10):
        raise InvalidInput(
            f"loading this pt2 model refused: LEDGERFLOW_ALLOW_PICKLE=false and torch "
            f"{torch.__version__} cannot safely verify that the archive holds no pickles "
            "(weights_only loading is unsafe before torch 2.10). Upgrade torch, or set "
            "LEDGERFLOW_ALLOW_PICKLE=true if you trust the file."
        )
    user_globals = _user_safe_globals(torch)
    try:
        archive = zipfile.ZipFile(model_file)
    except zipfile.BadZipFile as e:
        raise _refused(model_file.name) from e
    with archive:
        infos = [info for info in archive.infolist() if not info.is_dir()]
        configs = {i.filename: archive.read(i) for i in infos if _PAYLOAD_CONFIG.search(i.filename)}
        raw = _raw_tensor_records(configs)
        for info in infos:  # one record in memory at a time
            if info.filename in raw:
                continue
            if not _is_pickle_free(torch, info.filename, archive.read(info), user_globals):
                raise _refused(info.filename)
