"""JSON for the hot path: orjson when installed (numpy arrays serialized natively), else the
standard library. One place decides, so the protocol modules never care which."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

try:
    import orjson

    _OPTS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

    def loads(data: bytes | str) -> Any:
        return orjson.loads(data)

    def dumps(doc: Any) -> bytes:
        try:
            return orjson.dumps(doc, default=_default, option=_OPTS)
        except TypeError:  # e.g. a non-contiguous or big-endian array orjson refuses
            return json.dumps(doc, default=_default).encode()

    JSONDecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is in the server extra

    def loads(data: bytes | str) -> Any:
        return json.loads(data)

    def dumps(doc: Any) -> bytes:
        return json.dumps(doc, default=_default).encode()

    JSONDecodeError = json.JSONDecodeError


def _default(value: Any) -> Any:
    """What neither encoder knows: numpy scalars and arrays, pandas objects, bytes."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    isoformat = getattr(value, "isoformat", None)
    if callable(isoformat):
        return isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")
